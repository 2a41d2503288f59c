"""The studio's SQL (arte_core.store: catalog, drafts, decisions, analysis) on a hand-populated DuckDB
store: literal expected rows."""

import pandas as pd
import pytest
from studio_fixtures import (
    ACCURACY_B, COPYING_DRAFT, OTHER_RUN, OTHER_STUDENT, RUN, STUDENT, build_fixture_file, copy_fixture_store,
    rationale_id, rescore_fixture,
)

from arte_core.errors import ArteError
from arte_core.store import Store
from arte_core.store import analysis, catalog, decisions, drafts

INJECTION = "'; DROP TABLE pairs; --"


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    return build_fixture_file(tmp_path_factory.mktemp("studio-queries"))


@pytest.fixture
def store(fixture_file, tmp_path):
    with Store(copy_fixture_store(fixture_file, tmp_path / "store.duckdb")) as opened:
        yield opened


def ids(result: dict) -> list[str]:
    return result["rows"]["rationale_id"].tolist()


def test_runs_and_students(store):
    runs = catalog.list_runs(store)
    assert runs["run_id"].tolist() == [RUN, OTHER_RUN]
    assert runs.set_index("run_id").loc[RUN, ["questions", "rationales", "pairs"]].tolist() == [6, 24, 9]
    assert catalog.list_students(store, RUN) == [STUDENT, OTHER_STUDENT]
    assert catalog.list_techniques(store, RUN) == ["common_sense", "eliminate_options", "expert_procedure", "task_description"]
    assert catalog.n_pref_items(store, RUN, STUDENT) == 10


def test_default_page_sorted_by_score_with_literal_rows(store):
    page = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(page_size=5))
    assert page["total"] == 24 and page["pages"] == 5 and page["page"] == 1
    assert ids(page) == [rationale_id(0, 0), rationale_id(0, 1), rationale_id(1, 0), rationale_id(0, 2),
                         rationale_id(1, 3)]
    assert page["rows"]["accuracy"].tolist() == [0.9, 0.8, 0.8, 0.7, 0.7]
    first = page["rows"].iloc[0]
    assert (first["question"], first["technique"], first["word_count"], first["teacher_answer"]) == \
        ("True and not False", "expert_procedure", 60, "True")
    assert bool(first["matches_target"]) and bool(first["solver_agrees"]) and first["question_score"] == pytest.approx(0.75)


def test_paging_covers_every_draft_once(store):
    seen = []
    for page in range(1, 6):
        seen += ids(drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(page=page, page_size=5)))
    assert len(seen) == 24 and len(set(seen)) == 24
    last = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(page=5, page_size=5))
    assert len(last["rows"]) == 4


def test_every_student_side_by_side_and_influence(store):
    rows = drafts.drafts_page(store, RUN, OTHER_STUDENT, drafts.DraftFilter(page_size=50))["rows"].set_index("rationale_id")
    assert rows.loc[rationale_id(0, 0), "acc:student-b"] == ACCURACY_B[0][0] == pytest.approx(0.1)
    assert rows.loc[rationale_id(0, 0), "acc:student-s"] == 0.9
    assert rows.loc[rationale_id(0, 0), "accuracy"] == pytest.approx(0.1)  # the chosen student's score
    assert rows["influence"].isna().all()  # influence exists for student-s only
    mine = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(page_size=50))["rows"].set_index("rationale_id")
    assert mine.loc[rationale_id(0, 0), "influence"] == pytest.approx(0.04)


def test_filters_technique_and_min_score(store):
    page = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(technique="common_sense", min_score=0.5))
    assert ids(page) == [rationale_id(0, 1), rationale_id(5, 1), rationale_id(1, 1), rationale_id(2, 1)]


def test_filter_teacher_answer_wrong(store):
    page = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(matches_target=False, sort="question", direction="asc"))
    assert ids(page) == [rationale_id(1, 1), rationale_id(3, 3), rationale_id(4, 0)]


def test_filter_solver_agreement(store):
    disagree = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(solver_agrees=False))
    assert sorted(ids(disagree)) == sorted(rationale_id(2, t) for t in range(4))
    agree = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(solver_agrees=True))
    assert agree["total"] == 16  # question 5 has no solver verdict and matches neither


def test_word_range_sorted_by_length(store):
    page = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(min_words=80, max_words=90, sort="length", direction="asc"))
    assert ids(page) == [rationale_id(0, 3), rationale_id(4, 0), rationale_id(1, 3), rationale_id(5, 0),
                         rationale_id(2, 3)]
    assert page["rows"]["word_count"].tolist() == [80, 80, 85, 85, 90]


def test_text_search_is_literal_and_case_insensitive(store):
    quoted = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="o'brien"))
    assert sorted(ids(quoted)) == sorted(rationale_id(3, t) for t in range(4))
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="NOT TRUE"))["total"] == 4
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="%"))["total"] == 0  # not a LIKE wildcard
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="step%step"))["total"] == 0
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="step_step"))["total"] == 0
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="step step"))["total"] == 24


def test_a_repeated_search_sees_text_written_since(store):
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="zebra"))["total"] == 0
    store.execute("UPDATE rationales SET text = 'A zebra crossing' WHERE rationale_id = ?", [rationale_id(2, 1)])
    assert ids(drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="ZEBRA"))) == [rationale_id(2, 1)]


def test_search_stays_inside_the_run(store):
    # the other run's only rationale contains this text too
    page = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search="True and not False"))
    assert sorted(ids(page)) == sorted(rationale_id(0, t) for t in range(4))


def test_sql_in_a_filter_is_just_text(store):
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(search=INJECTION))["total"] == 0
    assert drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(technique="x' OR '1'='1"))["total"] == 0
    assert decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter(search=INJECTION))["total"] == 0
    assert store.scalar("SELECT count(*) FROM pairs") == 9


def test_sort_and_direction_come_from_whitelists(store):
    with pytest.raises(ArteError, match="cannot sort by"):
        drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(sort="accuracy; DROP TABLE pairs"))
    with pytest.raises(ArteError, match="direction"):
        drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(direction="desc; DROP TABLE pairs"))
    with pytest.raises(ArteError, match="decision state"):
        decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter(state="accept' OR '1'='1"))
    with pytest.raises(ArteError, match="evidence"):
        decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter(evidence="significant' OR '1'='1"))
    assert store.scalar("SELECT count(*) FROM pairs") == 9


def test_rationale_detail_has_every_item(store):
    detail = drafts.rationale_detail(store, rationale_id(0, 0), STUDENT)
    assert detail["rationale"]["technique"] == "expert_procedure"
    assert detail["scores"]["student"].tolist() == [OTHER_STUDENT, STUDENT]
    items = detail["items"]
    assert items["item_index"].tolist() == list(range(10))
    assert int(items["correct"].sum()) == 9
    assert pd.isna(items.iloc[9]["student_answer"])  # the unparsed answer
    assert items.iloc[0]["preference_question"] == "pref question 0"
    with pytest.raises(ArteError, match="no draft"):
        drafts.rationale_detail(store, "nope", STUDENT)


def test_rationale_detail_finds_items_written_again_elsewhere(store):
    """The detail reads items by their remembered rowid range; rows rewritten after it must still show."""
    rid = rationale_id(0, 0)
    before = drafts.rationale_detail(store, rid, STUDENT)["items"]
    with store.transaction():
        moved = store.rows("SELECT * FROM icl_items WHERE rationale_id = ? AND student = ? AND item_index = 0",
                           [rid, STUDENT])
        store.execute("DELETE FROM icl_items WHERE rationale_id = ? AND student = ? AND item_index = 0", [rid, STUDENT])
        store.insert("icl_items", moved)  # now after every other row: outside the remembered range
    after = drafts.rationale_detail(store, rid, STUDENT)["items"]
    assert after["item_index"].tolist() == list(range(10))
    assert after.equals(before)


def test_pairs_listing_contested_kind_and_state(store):
    page = decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter())
    assert page["total"] == 9
    assert page["rows"]["pair_id"].tolist() == ["pr-2", "pr-3", "pr-4", "pr-0", "pr-1", "pq-1-3", "pq-0-3",
                                                "pq-1-4", "pq-0-4"]
    assert decisions.matching_pair_ids(store, RUN, STUDENT, decisions.PairFilter(max_margin=0.1)) == ["pr-2"]
    assert decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter(kind="question"))["total"] == 4
    assert decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter(state="undecided"))["total"] == 9
    assert decisions.pairs_page(store, RUN, OTHER_STUDENT, decisions.PairFilter())["total"] == 0


def training(store) -> dict[str, tuple[str, str]]:
    return {p["pair_id"]: (p["chosen"], p["rejected"]) for p in store.training_pairs(RUN, STUDENT)}


def test_decisions_and_undo_change_training_pairs(store):
    original = training(store)
    decisions.add_decision(store, "pr-0", "swap", "alice", "the worse one is clearer")
    assert training(store)["pr-0"] == original["pr-0"][::-1]
    excluded = decisions.add_decision(store, "pq-0-3", "exclude", "alice", "duplicate question")["decision"]
    assert "pq-0-3" not in training(store)
    decisions.add_decision(store, "pq-0-3", "note", "bob", "looked at it again")  # a note changes nothing
    assert "pq-0-3" not in training(store)
    decisions.undo(store, excluded["decision_id"], "alice")
    assert training(store)["pq-0-3"] == original["pq-0-3"]
    decisions.add_decision(store, "pr-0", "accept", "bob", "")
    assert training(store)["pr-0"] == original["pr-0"]
    assert decisions.effective_decisions(store, RUN) == {"pr-0": "accept"}
    states = decisions.pairs_page(store, RUN, STUDENT, decisions.PairFilter(state="decided"))["rows"]
    assert states[["pair_id", "decision", "decided_by"]].values.tolist() == [["pr-0", "accept", "bob"]]
    assert decisions.pair(store, "pq-0-3")["n_notes"] == 1


def test_undo_falls_back_to_the_previous_live_decision(store):
    decisions.add_decision(store, "pr-1", "swap", "alice", "")
    accepted = decisions.add_decision(store, "pr-1", "exclude", "alice", "")["decision"]
    decisions.undo(store, accepted["decision_id"], "alice", "misclick")
    assert decisions.effective_decisions(store, RUN) == {"pr-1": "swap"}


def test_stale_expected_last_flags_a_conflict_and_keeps_both(store):
    seen_by_alice = decisions.pair(store, "pr-1")["last_decision_id"]
    seen_by_bob = decisions.pair(store, "pr-1")["last_decision_id"]
    bob = decisions.add_decision(store, "pr-1", "swap", "bob", "B reads better", expected_last=seen_by_bob)
    assert not bob["conflict"]
    alice = decisions.add_decision(store, "pr-1", "accept", "alice", "A is right", expected_last=seen_by_alice)
    assert alice["conflict"] and alice["previous"]["who"] == "bob"
    trail = decisions.decision_trail(store, pair_id="pr-1")
    assert trail[["who", "action"]].values.tolist() == [["alice", "accept"], ["bob", "swap"]]
    assert decisions.effective_decisions(store, RUN)["pr-1"] == "accept"  # the later decision wins
    fresh = decisions.add_decision(store, "pr-1", "note", "alice", "checked", expected_last=alice["decision"]["decision_id"])
    assert not fresh["conflict"]


def test_decision_errors_name_the_problem(store):
    with pytest.raises(ArteError, match="unknown action"):
        decisions.add_decision(store, "pr-0", "delete", "x", "")
    with pytest.raises(ArteError, match="no pair"):
        decisions.add_decision(store, "missing", "accept", "x", "")
    with pytest.raises(ArteError, match="note needs text"):
        decisions.add_decision(store, "pr-0", "note", "x", "   ")
    with pytest.raises(ArteError, match="no decision"):
        decisions.undo(store, 999, "x")
    first = decisions.add_decision(store, "pr-0", "swap", "x", "")["decision"]
    undo_row = decisions.undo(store, first["decision_id"], "x")
    with pytest.raises(ArteError, match="already undone"):
        decisions.undo(store, first["decision_id"], "x")
    with pytest.raises(ArteError, match="itself an undo"):
        decisions.undo(store, undo_row["decision_id"], "x")
    assert decisions.add_decision(store, "pr-0", "accept", "  ", "")["decision"]["who"] == "anonymous"


def test_read_only_store_refuses_decisions(fixture_file, tmp_path):
    path = copy_fixture_store(fixture_file, tmp_path / "ro.duckdb")
    with Store(path, read_only=True) as store:
        with pytest.raises(ArteError, match="read-only"):
            decisions.add_decision(store, "pr-0", "accept", "x", "")


def test_bulk_decision_is_all_or_nothing(store):
    decided = decisions.add_decisions(store, decisions.matching_pair_ids(store, RUN, STUDENT, decisions.PairFilter(kind="question")),
                              "exclude", "carol", "question pairs are off-task")
    assert [d["pair_id"] for d in decided] == ["pq-0-3", "pq-0-4", "pq-1-3", "pq-1-4"]
    assert sorted(training(store)) == ["pr-0", "pr-1", "pr-2", "pr-3", "pr-4"]
    with pytest.raises(ArteError, match="no pair"):
        decisions.add_decisions(store, ["pr-0", "missing"], "swap", "carol", "")
    assert decisions.effective_decisions(store, RUN).get("pr-0") is None  # the failed bulk left nothing behind
    with pytest.raises(ArteError, match="no pairs match"):
        decisions.add_decisions(store, [], "swap", "carol", "")


def test_a_store_from_before_bulk_ids_upgrades_and_old_decisions_stay_single(fixture_file, tmp_path):
    import duckdb

    path = copy_fixture_store(fixture_file, tmp_path / "old.duckdb")
    with Store(path) as store:  # a decision recorded before schema 7, then the column as it was: absent
        decisions.add_decision(store, "pr-0", "swap", "ann", "older")
    con = duckdb.connect(str(path))
    con.execute("DROP INDEX decisions_pair")  # DuckDB drops no column of an indexed table; the store recreates it
    con.execute("ALTER TABLE pair_decisions DROP COLUMN bulk_id")
    con.execute("UPDATE schema_version SET version = 6")
    con.close()
    with Store(path) as store:
        assert store.rows("SELECT decision_id, bulk_id FROM pair_decisions") == [{"decision_id": 1, "bulk_id": None}]
        batch = decisions.add_decisions(store, ["pr-1", "pr-2"], "exclude", "bob", "")
        assert [d["bulk_id"] for d in batch] == [2, 2] and decisions.bulk_size(store, 2) == 2
        assert decisions.latest_bulk_id(store, RUN) == 2
        undone = decisions.undo_bulk(store, 2, "bob", "")
        assert [u["undoes"] for u in undone] == [2, 3] and {u["bulk_id"] for u in undone} == {4}
        assert decisions.effective_decisions(store, RUN) == {"pr-0": "swap"}  # the older single decision stays
        with pytest.raises(ArteError, match="bulk action id to undo must be a whole number"):
            decisions.undo_bulk(store, 1.5, "bob")


def test_run_wide_trail_and_decided_pairs(store):
    decisions.add_decision(store, "pr-0", "swap", "alice", "")
    decisions.add_decision(store, "pr-2", "accept", "bob", "")
    trail = decisions.decision_trail(store, run_id=RUN)
    assert trail["pair_id"].tolist() == ["pr-2", "pr-0"]
    decided = decisions.decided_pairs(store, RUN, STUDENT)
    assert decided[["pair_id", "decision"]].values.tolist() == [["pr-0", "swap"], ["pr-2", "accept"]]


def test_analysis_queries(store):
    assert len(analysis.length_accuracy(store, RUN, STUDENT)) == 24
    techniques = analysis.accuracy_by_technique(store, RUN, STUDENT).set_index("technique")
    assert techniques.loc["expert_procedure", "mean_accuracy"] == pytest.approx(0.55)
    assert techniques["n"].tolist() == [6, 6, 6, 6]
    answers = analysis.teacher_answer_accuracy(store, RUN, STUDENT)
    assert answers["n"].tolist() == [3, 21]
    assert answers.iloc[0]["mean_accuracy"] == pytest.approx((0.5 + 0.3 + 0.2) / 3)
    questions = analysis.question_scores(store, RUN, STUDENT)
    assert questions["score"].round(4).tolist() == [0.75, 0.65, 0.525, 0.3, 0.2, 0.6]
    origins = analysis.origin_scores(store, RUN, STUDENT)
    assert origins["origin"].value_counts().to_dict() == {"draft": 24, "arte": 3}
    evaluation = analysis.evaluation_table(store, RUN)
    assert evaluation[["variant", "shots"]].values.tolist() == [
        ["untrained", 0], ["original", 0], ["arte", 0], ["untrained", 3], ["original", 3], ["arte", 3]]
    assert evaluation.iloc[-1]["accuracy"] == pytest.approx(0.44)
    # 22/50 with a Wilson 95% interval; the fixture's evaluations predate truncation records (NULL, not 0)
    assert (round(evaluation.iloc[-1]["ci_low"], 4), round(evaluation.iloc[-1]["ci_high"], 4)) == (0.3116, 0.5769)
    assert evaluation["unparsed_rate"].tolist() == [0.04] * 6 and evaluation["truncated_rate"].isna().all()


def test_chance_of_balanced_accuracy_comes_from_the_preference_labels(store):
    chance = analysis.label_chance(store, RUN)  # 10 items, 5 True and 5 False
    assert (chance.n_labels, chance.chance, round(chance.noise, 4)) == (2, 0.5, 0.1581)
    assert analysis.copies_demo_label(0.9, 0.5 + 0.158, chance) and not analysis.copies_demo_label(0.9, 0.66, chance)
    assert not analysis.copies_demo_label(0.89, 0.5, chance) and not analysis.copies_demo_label(None, 0.5, chance)
    no_labels = analysis.label_chance(store, "no-such-run")
    assert no_labels.n_labels == 0 and not analysis.copies_demo_label(1.0, 0.5, no_labels)


def test_new_score_columns_sort_filter_and_stay_null_for_old_scores(store):
    rescore_fixture(store)
    rows = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(sort="label-copy rate", page_size=50))["rows"]
    assert rows.iloc[0]["rationale_id"] == rationale_id(*COPYING_DRAFT) and rows.iloc[0]["label_copy_rate"] == 1.0
    assert rows.iloc[0]["copies_label"] == True  # noqa: E712 (a numpy bool)
    assert rows["label_copy_rate"].isna().sum() == 4 and rows["copies_label"].isna().sum() == 4  # question 5: old
    cut = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(sort="cut off", page_size=1))["rows"]
    assert cut["rationale_id"].tolist() == [rationale_id(0, 0)] and cut["n_truncated"].tolist() == [1]
    # the flag's edges in SQL: copy rate >= 0.9 and balanced accuracy within 0.5 ± 0.1581
    for q_t, copy_rate, balanced in (((0, 1), 0.95, 0.65), ((0, 2), 0.95, 0.66), ((0, 3), 0.89, 0.5)):
        store.execute("UPDATE icl_scores SET label_copy_rate = ?, balanced_accuracy = ? WHERE rationale_id = ? "
                      "AND student = ?", [copy_rate, balanced, rationale_id(*q_t), STUDENT])
    flagged = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(copies_label=True, sort="question", direction="asc"))
    assert ids(flagged) == [rationale_id(0, 1), rationale_id(*COPYING_DRAFT)]
    low = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(max_balanced=0.1))
    assert ids(low) == [rationale_id(4, 1)]
    old = drafts.drafts_page(store, RUN, OTHER_STUDENT, drafts.DraftFilter(page_size=50))["rows"]
    assert old[["balanced_accuracy", "label_copy_rate", "n_truncated", "n_lenient"]].isna().all().all()
    points, n = analysis.copy_rate_vs_balanced(store, RUN, STUDENT)
    assert n == 20 and len(points) == 20 and analysis.old_score_count(store, RUN, STUDENT) == 4
    assert analysis.copy_rate_vs_balanced(store, RUN, OTHER_STUDENT)[1] == 0
    assert analysis.old_score_count(store, RUN, OTHER_STUDENT) == 24
    items = drafts.rationale_detail(store, rationale_id(0, 0), STUDENT)["items"]
    assert items["parse_mode"].tolist() == ["strict"] * 9 + ["none"] and items["truncated"].tolist() == [False] * 9 + [True]


# ---- the facts table behind the drafts page and the plots ----------------------------------------


def test_rescoring_a_draft_shows_at_once(store):
    """The per-student facts are cached in memory; a new score must invalidate them, not be hidden."""
    top = rationale_id(0, 0)
    assert ids(drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(page_size=1))) == [top]
    with store.transaction():
        store.execute("DELETE FROM icl_scores WHERE rationale_id = ? AND student = ?", [rationale_id(5, 3), STUDENT])
        store.execute("INSERT INTO icl_scores (rationale_id, student, run_id, accuracy, n_items, n_correct, "
                      "n_unparsed, icl_format, created_at) VALUES (?, ?, ?, 1.0, 10, 10, 0, 'completion', now())",
                      [rationale_id(5, 3), STUDENT, RUN])
    page = drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(page_size=1))
    assert ids(page) == [rationale_id(5, 3)] and page["rows"]["accuracy"].tolist() == [1.0]
    assert analysis.question_scores(store, RUN, STUDENT).set_index("idx").loc[5, "n_rationales"] == 4


def test_plots_sample_points_but_aggregate_every_draft(store):
    everything = analysis.length_accuracy(store, RUN, STUDENT)
    sampled = analysis.length_accuracy(store, RUN, STUDENT, max_points=10)
    assert len(everything) == 24 and len(sampled) == 10
    assert set(sampled["rationale_id"]) <= set(everything["rationale_id"])
    assert sampled.equals(analysis.length_accuracy(store, RUN, STUDENT, max_points=10))  # the same sample each time
    bins = analysis.length_bins(store, RUN, STUDENT, 25)
    assert bins["count"].sum() == 24
    assert analysis.mean_accuracy(store, RUN, STUDENT) == pytest.approx(everything["accuracy"].mean())
    origins = analysis.origin_scores(store, RUN, STUDENT, max_points=5)
    assert origins.groupby("origin").size().to_dict() == {"arte": 3, "draft": 5}
    assert origins.groupby("origin")["n_origin"].first().to_dict() == {"arte": 3, "draft": 24}


def test_a_read_only_store_serves_the_drafts_page(fixture_file, tmp_path):
    path = copy_fixture_store(fixture_file, tmp_path / "public.duckdb")
    with Store(path, read_only=True) as public:
        assert drafts.drafts_page(public, RUN, STUDENT, drafts.DraftFilter())["total"] == 24
        assert len(analysis.question_scores(public, RUN, OTHER_STUDENT)) == 6

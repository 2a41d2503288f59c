"""The studio's handlers, plots and exports (arte_core.studio) on the hand-populated fixture store."""

import json
import zipfile

import pandas as pd
import pytest
from datasets import load_from_disk
from studio_fixtures import (
    COPYING_DRAFT, OTHER_STUDENT, RUN, STUDENT, build_fixture_file, copy_fixture_store, rationale_id, rationale_text,
    rescore_fixture,
)

from arte_core.errors import ArteError
from arte_core.stats import binomial_sd, cohen_kappa, spearman
from arte_core.store import Store
from arte_core.store import decisions
from arte_core.studio import analysis, common, drafts, export, pairs, plots, signals


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    return build_fixture_file(tmp_path_factory.mktemp("studio-handlers"))


@pytest.fixture
def store(fixture_file, tmp_path):
    with Store(copy_fixture_store(fixture_file, tmp_path / "store.duckdb")) as opened:
        yield opened


# -- drafts ------------------------------------------------------------------------------------------

def test_drafts_view_states_rows_and_noise(store):
    view = drafts.drafts_view(store, RUN, STUDENT, drafts.draft_filter())
    assert view["total"] == 24 and view["pages"] == 1
    assert view["info"].startswith("Drafts 1–24 of 24 · page 1 of 1")
    assert "binomial noise sd ≈ 0.158" in view["info"]  # sqrt(0.5 * 0.5 / 10)
    table = view["table"]
    assert list(table.columns)[-1] == "rationale_id"
    assert {"acc:student-s", "acc:student-b", "accuracy", "balanced accuracy", "influence"} <= set(table.columns)
    assert table.iloc[0]["rationale_id"] == rationale_id(0, 0)


def test_draft_filter_from_form_values(store):
    flt = drafts.draft_filter("common_sense", "0.5", "", None, "  ", "yes", "any", "", "score", "desc", "1")
    assert (flt.technique, flt.min_score, flt.max_score, flt.matches_target, flt.solver_agrees) == \
        ("common_sense", 0.5, None, True, None)
    view = drafts.drafts_view(store, RUN, STUDENT, flt)
    assert view["table"]["rationale_id"].tolist() == [rationale_id(0, 1), rationale_id(5, 1), rationale_id(2, 1)]
    with pytest.raises(ArteError, match="min score must be a number"):
        drafts.draft_filter(min_score="lots")
    with pytest.raises(ArteError, match="no run 'nope'"):
        drafts.drafts_view(store, "nope", STUDENT, drafts.draft_filter())
    with pytest.raises(ArteError, match="choose a student"):
        drafts.drafts_view(store, RUN, "", drafts.draft_filter())


def test_page_past_the_end_shows_the_last_page(store):
    view = drafts.drafts_view(store, RUN, STUDENT, drafts.draft_filter(page=9))
    assert view["page"] == 1 and len(view["table"]) == 24


def test_quotes_and_sql_in_search_are_literal(store):
    assert drafts.drafts_view(store, RUN, STUDENT, drafts.draft_filter(search="O'Brien"))["total"] == 4
    view = drafts.drafts_view(store, RUN, STUDENT, drafts.draft_filter(search="'; DROP TABLE pairs; --"))
    assert view["total"] == 0 and "No drafts match" in view["info"]
    assert store.scalar("SELECT count(*) FROM pairs") == 9


def test_draft_detail(store):
    detail = drafts.draft_detail(store, rationale_id(0, 0), STUDENT)
    assert "**expert_procedure**" in detail["meta"]
    assert "student-s 0.90 (9/10, unparsed 1;" in detail["meta"] and "student-b 0.10" in detail["meta"]
    assert "Influence: student-s +0.0400" in detail["meta"]
    assert detail["rationale"] == rationale_text(0, 0)
    assert detail["items"]["correct"].tolist().count("yes") == 9
    with pytest.raises(ArteError, match="click a row"):
        drafts.draft_detail(store, "", STUDENT)


@pytest.fixture
def rescored(store):
    """The fixture store with STUDENT's drafts of questions 0-4 scored as since schema 3 (studio_fixtures)."""
    rescore_fixture(store)
    return store


def test_old_scores_show_a_dash_and_how_to_rescore_never_zero(rescored):
    table = drafts.drafts_view(rescored, RUN, OTHER_STUDENT, drafts.draft_filter())["table"]
    for name in ("balanced accuracy", "label-copy rate", "copies demo label", "cut off", "lenient"):
        assert set(table[name]) == {"—"}, name
    info = drafts.drafts_view(rescored, RUN, OTHER_STUDENT, drafts.draft_filter())["info"]
    assert "— : scored by an older version; `arte rescore` scores it anew (24 of this student's drafts)" in info
    mine = drafts.drafts_view(rescored, RUN, STUDENT, drafts.draft_filter(sort="balanced accuracy"))
    assert "(4 of this student's drafts)" in mine["info"]
    # sorted by balanced accuracy, the four old scores come last (NULLS LAST), each a dash
    assert mine["table"]["balanced accuracy"].tolist()[-4:] == ["—"] * 4
    assert sorted(mine["table"]["rationale_id"].tolist()[-4:]) == sorted(rationale_id(5, t) for t in range(4))
    top = mine["table"].iloc[0]
    assert (top["balanced accuracy"], top["label-copy rate"], top["cut off"], top["lenient"]) == (0.9, 0.5, 1, 0)


def test_a_draft_whose_student_copies_the_demo_label_at_chance_is_flagged(rescored):
    # COPYING_DRAFT's student answers "True", its demo's (wrong) answer, on all 10 items: copy rate 1.0, and
    # recall 1 on True, 0 on False: balanced accuracy 0.5 = chance (1/2 labels, noise sd sqrt(0.25/5 · 2)/2 = 0.158)
    table = drafts.drafts_view(rescored, RUN, STUDENT, drafts.draft_filter())["table"].set_index("rationale_id")
    copying = table.loc[rationale_id(*COPYING_DRAFT)]
    assert (copying["label-copy rate"], copying["balanced accuracy"], copying["copies demo label"]) == (1.0, 0.5, "yes")
    assert set(table["copies demo label"]) == {"yes", "no", "—"}
    assert set(table["answer ok"]) == {"yes", "no"}  # one boolean style across the table
    flagged = drafts.drafts_view(rescored, RUN, STUDENT, drafts.draft_filter(copies_label="yes"))["table"]
    assert flagged["rationale_id"].tolist() == [rationale_id(*COPYING_DRAFT)]
    # "no" counts the 19 rescored drafts that do not copy, never the 4 that cannot say
    assert drafts.drafts_view(rescored, RUN, STUDENT, drafts.draft_filter(copies_label="no"))["total"] == 19
    between = drafts.drafts_view(rescored, RUN, STUDENT, drafts.draft_filter(min_balanced="0.8", max_balanced=0.85))
    assert sorted(between["table"]["rationale_id"]) == sorted([rationale_id(0, 1), rationale_id(1, 0)])
    with pytest.raises(ArteError, match="min balanced accuracy must be at most 1"):
        drafts.draft_filter(min_balanced="80")


def test_draft_detail_shows_each_answer_with_its_parse_mode_and_cut_off(rescored):
    detail = drafts.draft_detail(rescored, rationale_id(0, 0), STUDENT)
    items = detail["items"]
    # short headers, so narrow columns do not wrap their names
    assert list(items.columns) == ["#", "question", "target", "answer", "correct", "parse mode", "cut off", "output"]
    assert items["parse mode"].tolist() == ["strict"] * 9 + ["none"]
    assert items["cut off"].tolist() == ["no"] * 9 + ["yes"]
    assert "student-s 0.90 (9/10, unparsed 1, cut off 1, lenient 0; balanced accuracy 0.90, label-copy rate 0.50)" \
        in detail["meta"]
    assert "student-b 0.10 (1/10, unparsed 1; balanced accuracy —, label-copy rate —: scored by an older version; " \
           "`arte rescore` scores it anew)" in detail["meta"]
    lenient = drafts.draft_detail(rescored, rationale_id(0, 1), STUDENT)["items"]
    assert lenient["parse mode"].tolist()[:4] == ["lenient", "lenient", "lenient", "strict"]
    old = drafts.draft_detail(rescored, rationale_id(0, 0), OTHER_STUDENT)["items"]
    assert set(old["parse mode"]) == {"—"} and set(old["cut off"]) == {"—"}


def test_run_and_student_choices(store):
    assert common.default_run(store) == RUN  # the newest run that has pairs
    assert [value for _, value in common.run_choices(store)] == [RUN, "sort-fixture"]
    assert common.student_choices(store, RUN) == [STUDENT, OTHER_STUDENT]
    assert common.technique_choices(store, RUN)[0] == "all"


# -- pairs -------------------------------------------------------------------------------------------

def test_pairs_view_hides_scores_in_blind_mode(store):
    open_view = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter())
    assert {"chosen score", "rejected score", "chosen", "rejected"} <= set(open_view["table"].columns)
    blind = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(), blind=True)
    assert not {"chosen score", "rejected score", "chosen", "rejected"} & set(blind["table"].columns)
    assert blind["table"]["pair_id"].tolist() == open_view["table"]["pair_id"].tolist()
    contested = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(contested=True, max_margin="0.1"))
    assert contested["table"]["pair_id"].tolist() == ["pr-2"]
    empty = pairs.pairs_view(store, RUN, OTHER_STUDENT, pairs.pair_filter())
    assert "Pairs exist for: student-s" in empty["info"]


def set_pair_test(store, pair_id: str, p_value: float, n_shared: int, chosen_only: int, rejected_only: int,
                  test: str = "mcnemar_exact") -> None:
    store.execute("UPDATE pairs SET p_value = ?, n_shared = ?, n_chosen_only = ?, n_rejected_only = ?, pair_test = ? "
                  "WHERE pair_id = ?", [p_value, n_shared, chosen_only, rejected_only, test, pair_id])


def test_pairs_show_their_paired_test_and_filter_within_noise(store):
    # The fixture's pairs were built before pairs were tested: like the shipped demo, they show no p.
    view = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter())
    assert set(view["table"]["evidence"]) == {"not tested"} and set(view["table"]["p"]) == {"—"}
    assert set(view["table"]["discordant (chosen vs rejected)"]) == {"—"}
    assert "paired test at p ≤ 0.05: 0 significant, 0 within noise, 9 not tested" in view["info"]
    assert "**not tested** (built before pairs were tested; rebuild them" in pairs.pair_panel(store, "pr-0")["header"]
    set_pair_test(store, "pr-0", 0.03125, 10, 6, 0)  # significant
    set_pair_test(store, "pr-1", 0.0703125, 10, 7, 1)  # within noise at 0.05, significant at 0.1
    set_pair_test(store, "pr-2", 0.03125, 10, 0, 6)  # significant, but for the rejected side: within noise
    set_pair_test(store, "pq-0-3", 0.25, 10, 3, 0, "item_sign_test")
    shown = {flt: sorted(pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(evidence=flt))["table"]["pair_id"])
             for flt in ("significant", "within noise", "not tested")}
    assert shown == {"significant": ["pr-0"], "within noise": ["pq-0-3", "pr-1", "pr-2"],
                     "not tested": ["pq-0-4", "pq-1-3", "pq-1-4", "pr-3", "pr-4"]}
    assert sorted(pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(evidence="significant", noise_level="0.1")
                                   )["table"]["pair_id"]) == ["pr-0", "pr-1"]
    row = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(sort="p-value"))["table"].iloc[0]
    assert (row["p"], row["evidence"], row["discordant (chosen vs rejected)"]) == ("0.0312", "significant", "6 vs 0 of 10")
    header = pairs.pair_panel(store, "pr-1")["header"]
    assert ("McNemar's exact test on 10 shared preference items: 7 favour the chosen side, 1 the rejected · "
            "**p = 0.0703** · within noise at p ≤ 0.05") in header
    blind = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(), blind=True)["table"]
    assert {"evidence", "p"} <= set(blind.columns) and "discordant (chosen vs rejected)" not in blind.columns
    with pytest.raises(ArteError, match="noise level"):
        pairs.pair_filter(noise_level="1.5")


def test_the_contested_margin_defaults_to_the_noise_of_a_drafts_score(store):
    view = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(contested=True))
    # one binomial sd at p = 1/2 over the fixture's 10 preference items: sqrt(0.25 / 10) = 0.158
    assert "contested: margin ≤ 0.158, one binomial sd of a draft's accuracy at n_pref = 10" in view["info"]
    assert view["table"]["pair_id"].tolist() == ["pr-2"]  # margin 0.1; the next smallest are 0.2
    bulk = pairs.decide_bulk(store, RUN, STUDENT, pairs.pair_filter(contested=True), "exclude", "carol", "noise")
    assert "on 1 pair(s)" in bulk["message"]


def test_blind_panel_maps_sides_and_reveals_after_a_decision(store):
    for pair_id in ("pr-0", "pr-1", "pr-2", "pr-3", "pr-4"):
        pair = decisions.pair(store, pair_id)
        panel = pairs.pair_panel(store, pair_id, blind=True)
        assert (panel["left_label"], panel["right_label"]) == ("A (left)", "B (right)")
        choices = dict(panel["choices"])
        left_is_chosen = panel["left"] == pair["chosen"]
        assert left_is_chosen != pairs.presentation_swapped(pair_id)
        assert choices["A (left) is better"] == ("accept" if left_is_chosen else "swap")
        assert "margin" not in panel["header"] and f"{pair['chosen_score']:.3f}" not in panel["header"]
    # The seeded order is not always the same side, or it would not counter position bias.
    assert len({pairs.presentation_swapped(f"pr-{i}") for i in range(5)} | {pairs.presentation_swapped("pq-0-3")}) == 2
    pairs.decide(store, "pr-0", "accept", "alice", "", 0)
    revealed = pairs.pair_panel(store, "pr-0", blind=True)
    assert revealed["revealed"] and "CHOSEN" in revealed["left_label"] + revealed["right_label"]
    assert revealed["expected_last"] == 1


def test_decide_warns_on_a_conflict(store):
    first = pairs.decide(store, "pr-3", "swap", "bob", "", expected_last=0)
    assert first["warning"] is None and "Recorded decision 1" in first["message"]
    second = pairs.decide(store, "pr-3", "accept", "alice", "", expected_last=0)
    assert second["conflict"] and "bob recorded 'swap'" in second["warning"] and "yours is the latest" in second["warning"]
    trail = pairs.trail_view(store, "pr-3", RUN)
    assert trail["who"].tolist() == ["alice", "bob"]


def test_bulk_undo_and_trail(store):
    bulk = pairs.decide_bulk(store, RUN, STUDENT, pairs.pair_filter(kind="question"), "exclude", "carol", "off-task")
    assert "on 4 pair(s)" in bulk["message"]
    assert pairs.latest_undoable(store, "pq-0-3") == 1
    undone = pairs.undo_decision(store, 1, "carol", "")
    assert "Decision 1 undone" in undone["message"]
    assert pairs.latest_undoable(store, "pq-0-3") is None
    run_trail = pairs.trail_view(store, None, RUN, whole_run=True)
    assert len(run_trail) == 5 and run_trail.iloc[0]["action"] == "undo"
    assert pairs.trail_view(store, None, RUN).empty
    with pytest.raises(ArteError, match="type the id"):
        pairs.undo_decision(store, None, "carol")


def test_a_bulk_decision_is_asked_with_its_count_and_undone_as_one(store):
    before = store.training_pairs(RUN, STUDENT)
    asked = pairs.bulk_preview(store, RUN, STUDENT, pairs.pair_filter(kind="question"), "exclude")
    assert asked["count"] == 4 and "**4 pair(s)**" in asked["message"]
    assert store.scalar("SELECT count(*) FROM pair_decisions") == 0  # asking records nothing
    pairs.decide(store, "pr-0", "swap", "dave", "")  # a single decision before: not part of the batch
    done = pairs.decide_pairs(store, asked["pair_ids"], "exclude", "carol", "off-task")
    assert done["bulk_id"] == 2 and "as bulk action 2" in done["message"]
    trail = pairs.trail_view(store, None, RUN, whole_run=True)
    assert sorted(trail[trail["bulk"] == 2]["pair_id"]) == ["pq-0-3", "pq-0-4", "pq-1-3", "pq-1-4"]
    assert trail[trail["pair_id"] == "pr-0"]["bulk"].tolist() == ["—"]
    assert pairs.latest_bulk(store, RUN) == 2
    undone = pairs.undo_bulk(store, 2, "carol", "wrong filter")
    assert "Bulk action 2 undone: 4 decision(s)" in undone["message"]
    after = {p["pair_id"]: p for p in store.training_pairs(RUN, STUDENT)}
    assert {p["pair_id"] for p in before} == set(after)  # every excluded pair is back
    assert decisions.effective_decisions(store, RUN) == {"pr-0": "swap"}  # the single decision stays
    assert pairs.latest_bulk(store, RUN) is None
    with pytest.raises(ArteError, match="already undone"):
        pairs.undo_bulk(store, 2, "carol")
    with pytest.raises(ArteError, match="no bulk action with id 1"):
        pairs.undo_bulk(store, 1, "carol")
    with pytest.raises(ArteError, match="no pairs match"):
        pairs.bulk_preview(store, RUN, STUDENT, pairs.pair_filter(search="no such text"), "exclude")


def test_blind_review_hides_margin_decisions_and_reviewers_until_decided(store):
    pairs.decide(store, "pr-0", "accept", "alice", "")
    pairs.decide(store, "pr-1", "note", "bob", "the left one restates the question")
    table = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(), blind=True)["table"]
    assert not {"margin", "decision", "by", "notes", "chosen score", "chosen"} & set(table.columns)
    assert dict(zip(table["pair_id"], table["decided"]))["pr-0"] == "yes"
    assert dict(zip(table["pair_id"], table["decided"]))["pr-1"] == "no"
    # bob's note on the undecided pr-1 is not shown to a blind reviewer; alice's decided pr-0 is
    assert pairs.trail_view(store, "pr-1", RUN, blind=True).empty
    assert not pairs.trail_view(store, "pr-1", RUN).empty
    assert set(pairs.trail_view(store, None, RUN, whole_run=True, blind=True)["pair_id"]) == {"pr-0"}
    hidden = pairs.pair_panel(store, "pr-1", blind=True)
    assert "margin 0." not in hidden["header"] and "bob" not in hidden["header"] and hidden["items"].empty
    # after the decision the sides are revealed but keep their A/B labels and the options their wording
    shown = pairs.pair_panel(store, "pr-0", blind=True)
    assert shown["left_label"].startswith("A (left) · student's") and shown["right_label"].startswith("B (right) · ")
    assert [label for label, _ in shown["choices"]][:2] == ["A (left) is better", "B (right) is better"]
    assert "A (left) correct" in shown["items"].columns
    # filtering on others' decisions would reveal them: refused, while 'decided' only says a pair is done
    with pytest.raises(ArteError, match="blind review hides decisions: the decision state 'accept'"):
        pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(state="accept"), blind=True)
    decided = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(state="decided"), blind=True)["table"]
    assert decided["pair_id"].tolist() == ["pr-0"]


def test_the_panel_shows_each_sides_target_with_the_solver_and_the_answers_side_by_side(store):
    # question 2's target is wrong by the task's solver (SOLVER_AGREES[2] is False)
    wrong = pairs.pair_panel(store, "pr-2")
    assert "solver agrees: **no**" in wrong["sides"] and "a wrong target" in wrong["sides"]
    assert "**chosen**: target `False` · solver agrees: **no**" in wrong["sides"]
    right = pairs.pair_panel(store, "pr-0")
    assert right["sides"].count("solver agrees: yes") == 2
    items = right["items"]  # (0, 0) scores 0.9: items 0-8 right; (0, 3) scores 0.6: items 0-5 right
    assert list(items.columns) == ["#", "question", "target", "chosen answer", "chosen correct", "rejected answer",
                                   "rejected correct"]
    assert items["chosen correct"].tolist() == ["yes"] * 9 + ["no"]
    assert items["rejected correct"].tolist() == ["yes"] * 6 + ["no"] * 4
    assert items["chosen answer"].tolist()[-1] == "—"  # the unparsed answer of draft (0, 0)
    assert items.iloc[0]["question"] == "pref question 0" and items.iloc[0]["target"] == "True"
    # a question side: how many of the question's drafts got each item right (accuracies 0.9 0.8 0.7 0.6)
    question = pairs.pair_panel(store, "pq-0-3")["items"]
    assert question["chosen drafts right"].tolist()[5:] == ["4/4", "3/4", "2/4", "1/4", "0/4"]


def test_tables_render_questions_and_show_a_dash_for_what_is_missing(store):
    table = pairs.pairs_view(store, RUN, STUDENT, pairs.pair_filter(kind="question"))["table"]
    chosen = dict(zip(table["pair_id"], table["chosen"]))["pq-0-3"]
    assert chosen == "True and not False → target True" and "<input>" not in "".join(table["rejected"])
    assert pairs.pair_panel(store, "pq-0-3")["left"] == "True and not False\n\nTarget: True"
    assert set(table["decision"]) == {"—"} and set(table["by"]) == {"—"}
    drafts_table = drafts.drafts_view(store, RUN, OTHER_STUDENT, drafts.draft_filter())["table"]
    assert not drafts_table.isna().any().any() and set(drafts_table["influence"]) == {"—"}
    assert set(drafts_table["solver ok"]) == {"yes", "no", "—"}  # one boolean style; question 5 has no solver


def test_an_error_leaves_every_output_in_place():
    import gradio as gr

    from ui.common import in_place, in_place_status

    def refuse(value):
        raise ArteError(f"min score must be a number, got {value!r}; clear the box to drop this filter.")

    skipped = in_place(refuse, 3, notice=True)("50%")
    assert [type(v) for v in skipped[:3]] == [type(gr.skip())] * 3 and skipped[3].startswith("⚠️ min score")
    assert in_place(lambda: ("table", "info", 1), 3, notice=True)() == ("table", "info", 1, "")
    status = in_place_status(refuse, 4, at=3)("x")
    assert status[3].startswith("⚠️") and all(type(v) is type(gr.skip()) for v in status[:3])


def test_agreement_numbers(store):
    assert pairs.agreement(store, RUN, STUDENT)["agreement"] is None
    pairs.decide(store, "pr-0", "accept", "a", "")
    pairs.decide(store, "pr-1", "accept", "a", "")
    pairs.decide(store, "pr-2", "swap", "a", "")
    pairs.decide(store, "pq-0-3", "exclude", "a", "")
    stats = pairs.agreement(store, RUN, STUDENT)
    assert (stats["n_accept"], stats["n_swap"], stats["n_exclude"], stats["n_decided"]) == (2, 1, 1, 4)
    assert stats["agreement"] == pytest.approx(2 / 3)
    proxy = ["right" if pairs.presentation_swapped(p) else "left" for p in ("pr-0", "pr-1", "pr-2")]
    human = proxy[:2] + [{"left": "right", "right": "left"}[proxy[2]]]
    assert stats["kappa"] == cohen_kappa(proxy, human)
    text = pairs.agreement_markdown(stats)
    assert "67% of judged pairs accepted" in text and "2 accepted, 1 swapped, 1 excluded" in text


def test_cohen_kappa_and_spearman():
    assert cohen_kappa(["l", "r", "l", "r"], ["l", "r", "l", "r"]) == 1.0
    assert cohen_kappa(["l", "r", "l", "r"], ["r", "l", "r", "l"]) == -1.0
    assert cohen_kappa(["l", "l"], ["l", "l"]) is None  # chance agreement is certain
    assert cohen_kappa([], []) is None
    assert spearman(pd.Series([1, 2, 3, 4]), pd.Series([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(pd.Series([1, 2, 3, 4]), pd.Series([4, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(pd.Series([1, 2]), pd.Series([1, 2])) is None


# -- plots -------------------------------------------------------------------------------------------

def test_analysis_figures_have_one_point_per_draft(store):
    view = analysis.analysis_view(store, RUN, STUDENT)
    assert plots.marker_point_count(view["length"]) == 24
    names = [t.name for t in view["length"].data]
    assert "binned mean" in names and "95% band" in names
    assert "binomial noise sd" in view["length"].layout.title.text
    assert list(view["technique"].data[0].x) == ["common_sense", "eliminate_options", "expert_procedure",
                                                 "task_description"]
    assert len(view["questions"].data[0].x) == 6
    assert list(view["teacher_answer"].data[0].x) == ["teacher answer wrong", "teacher answer right"]
    assert [len(t.y) for t in view["origin"].data] == [24, 3]
    assert [t.name for t in view["evaluation"].data] == ["untrained", "original", "arte"]
    assert all(len(t.y) == 2 for t in view["evaluation"].data)
    assert "Spearman ρ" in view["summary"] and "24 scored drafts" in view["summary"]
    assert len(view["evaluation_table"]) == 6


def test_evaluation_has_wilson_intervals_and_unparsed_and_cut_off_rates(store):
    view = analysis.analysis_view(store, RUN, STUDENT)
    table = view["evaluation_table"]
    assert list(table.columns) == ["variant", "shots", "accuracy", "95% CI", "correct", "n", "unparsed",
                                   "unparsed rate", "cut off", "cut-off rate", "model"]
    # untrained 0-shot: 15/50; Wilson: center (0.3 + z²/100) / (1 + z²/50) = 0.3143,
    # half width z / (1 + z²/50) · sqrt(0.3·0.7/50 + z²/10000) = 0.1232: 0.1910–0.4375
    first = table.iloc[0]
    assert (first["variant"], first["95% CI"], first["unparsed rate"], first["cut off"]) == \
        ("untrained", "0.191–0.438", 0.04, "—")
    bars = view["evaluation"].data[0]
    assert bars.error_y.array[0] == pytest.approx(0.4375 - 0.3, abs=1e-4)
    assert bars.error_y.arrayminus[0] == pytest.approx(0.3 - 0.1910, abs=1e-4)
    assert bars.text[0] == "0.300<br>n=50<br>unparsed 4%<br>cut off —"
    assert "Wilson 95%" in view["evaluation"].layout.title.text and "n = 50" in view["evaluation"].layout.title.text
    store.execute("UPDATE evaluations SET n_truncated = 5 WHERE variant = 'untrained' AND shots = 0")
    again = analysis.analysis_view(store, RUN, STUDENT)
    assert (again["evaluation_table"].iloc[0]["cut off"], again["evaluation_table"].iloc[0]["cut-off rate"]) == (5, 0.1)
    assert again["evaluation"].data[0].text[0].endswith("cut off 10%")


def test_label_copy_figure_plots_rescored_drafts_with_n_and_says_why_old_ones_are_missing(store):
    old = analysis.analysis_view(store, RUN, STUDENT)["label_copy"]
    assert plots.marker_point_count(old) == 0
    assert "24 drafts were scored by an older version" in old.layout.annotations[0].text
    rescore_fixture(store)
    view = analysis.analysis_view(store, RUN, STUDENT)
    figure = view["label_copy"]
    assert "(n = 20 drafts)" in figure.layout.title.text and "4 scored by an older version" in figure.layout.title.text
    flagged = [t for t in figure.data if t.name.startswith("copies demo label")]
    assert [list(t.customdata[:, 0]) for t in flagged] == [[rationale_id(*COPYING_DRAFT)]]
    assert plots.marker_point_count(figure) == 20
    assert "1 copy the demo's label" in view["summary"]


def test_length_bins_and_noise():
    frame = pd.DataFrame({"word_count": [10, 20, 30, 60], "accuracy": [0.2, 0.4, 0.6, 0.9]})
    # the store's length_bins rows for these drafts (bin_start, mean, count, sample sd)
    bins = plots.with_band(pd.DataFrame({"bin_start": [0, 25, 50], "mean": [0.3, 0.6, 0.9], "count": [2, 1, 1],
                                         "std": [0.1414, 0.0, 0.0]}), 25)
    assert bins["bin_start"].tolist() == [0, 25, 50]
    assert bins["mean"].round(3).tolist() == [0.3, 0.6, 0.9]
    assert bins.iloc[2]["half_width"] == 0.0  # one draft: no band
    assert bins["center"].tolist() == [12.5, 37.5, 62.5] and bins.iloc[0]["half_width"] == pytest.approx(0.196, abs=1e-3)
    assert binomial_sd(0.5, 40) == pytest.approx(0.0791, abs=1e-4)
    empty = plots.length_accuracy_figure(frame.iloc[0:0], 10, bins, None)
    assert plots.marker_point_count(empty) == 0 and empty.layout.annotations


def test_signals_view(store):
    view = signals.signals_view(store, RUN, STUDENT)
    assert plots.marker_point_count(view["figure"]) == 24
    assert view["summary"].startswith("24 drafts with both signals")
    assert "rationale_id" in view["disagreements"].columns
    none = signals.signals_view(store, RUN, OTHER_STUDENT)
    assert "No drafts with both signals" in none["summary"] and plots.marker_point_count(none["figure"]) == 0


# -- export ------------------------------------------------------------------------------------------

def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_exported_pairs_carry_the_overrides(store, tmp_path):
    original = decisions.pair(store, "pr-0")
    pairs.decide(store, "pr-0", "swap", "alice", "the rejected one is clearer")
    pairs.decide(store, "pq-0-3", "exclude", "alice", "duplicate")
    result = export.export_files(store, "pairs", RUN, STUDENT, folder=tmp_path / "out")
    by_suffix = {str(f).rsplit(".", 1)[-1]: f for f in result["files"]}  # health.json rides along (studio/health.py)
    jsonl, parquet, archive = by_suffix["jsonl"], by_suffix["parquet"], by_suffix["zip"]
    rows = {r["pair_id"]: r for r in read_jsonl(jsonl)}
    assert len(rows) == 8 and "pq-0-3" not in rows
    swapped = rows["pr-0"]
    assert (swapped["chosen"], swapped["rejected"]) == (original["rejected"], original["chosen"])
    assert swapped["prompt"] == original["prompt"]
    assert (swapped["chosen_ref"], swapped["chosen_score"]) == (original["rejected_ref"], original["rejected_score"])
    assert swapped["decision"] == "swap" and swapped["swapped_by_human"] and swapped["decided_by"] == "alice"
    assert (swapped["task"], swapped["teacher"], swapped["student"], swapped["signal"], swapped["style"]) == \
        ("boolean_expressions", "teacher-t", STUDENT, "icl", "arte")
    untouched = rows["pr-1"]
    assert untouched["decision"] is None and not untouched["swapped_by_human"]
    assert sorted(pd.read_parquet(parquet)["pair_id"]) == sorted(rows)
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(archive).extractall(folder)
    dataset = load_from_disk(str(folder))
    assert dataset.column_names[:3] == ["prompt", "chosen", "rejected"] and len(dataset) == 8
    assert "8 training pairs (1 swapped by people" in result["message"]


def test_export_matches_training_pairs(store, tmp_path):
    pairs.decide(store, "pr-2", "swap", "a", "")
    frame = export.pair_records(store, RUN, STUDENT)
    training = {p["pair_id"]: (p["prompt"], p["chosen"], p["rejected"]) for p in store.training_pairs(RUN, STUDENT)}
    assert {r.pair_id: (r.prompt, r.chosen, r.rejected) for r in frame.itertuples()} == training


def test_sft_and_draft_exports(store, tmp_path):
    sft = export.export_files(store, "sft", RUN, STUDENT, ["jsonl"], folder=tmp_path)
    rows = read_jsonl(sft["files"][0])
    assert len(rows) == 6 and {r["dataset"] for r in rows} == {"original", "arte"}
    drafts = export.export_files(store, "drafts", RUN, STUDENT, ["parquet"], folder=tmp_path)
    frame = pd.read_parquet(drafts["files"][0])
    assert len(frame) == 24 and frame["accuracy"].max() == pytest.approx(0.9)
    with pytest.raises(ArteError, match="cannot export"):
        export.export_files(store, "everything", RUN, STUDENT, folder=tmp_path)
    with pytest.raises(ArteError, match="unknown export format"):
        export.export_files(store, "sft", RUN, STUDENT, ["csv"], folder=tmp_path)


def test_push_needs_a_token(store, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert "set the HF_TOKEN" in export.push_export(store, "pairs", RUN, STUDENT, "me/arte-pairs")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    assert "is not a dataset id" in export.push_export(store, "pairs", RUN, STUDENT, "not a repo")


def test_an_empty_store_shows_what_to_do(tmp_path):
    with Store(tmp_path / "empty.duckdb") as empty:
        assert common.default_run(empty) is None and common.run_choices(empty) == []
        assert "store is empty" in common.store_summary(empty)
        assert "no runs yet" in drafts.drafts_view(empty, None, None, drafts.draft_filter())["info"]
        assert "no runs yet" in pairs.pairs_view(empty, None, None, pairs.pair_filter())["info"]
        assert "no runs yet" in analysis.analysis_view(empty, None, None)["summary"]
        assert "no runs yet" in signals.signals_view(empty, None, None)["summary"]


def test_two_students_draft_scores_are_compared_with_a_ci(store):
    from arte_core.stats import spearman_ci

    view = signals.students_view(store, RUN, STUDENT, OTHER_STUDENT)
    # student-b's fixture scores are 1 − student-a's: the students rank every draft oppositely
    low, high = spearman_ci(-1.0, 24)
    assert "24 drafts scored by both students" in view["summary"] and "ρ = -1.00" in view["summary"]
    assert low == high == -1.0 or f"{low:.2f}…{high:.2f}" in view["summary"]
    assert plots.marker_point_count(view["figure"]) == 24
    assert "Pick a second student" in signals.students_view(store, RUN, STUDENT, None)["summary"]

"""The answer log-probability metric (`score.metric: answer_logprob`): the teacher-forced log-probability
equals a hand-computed log_softmax sum, the score stage stores it per item and per draft (and an
accuracy-only run pays nothing for it), older stores upgrade, pairs rank and test on it (Wilcoxon), and
the health audit shows its reliability beside accuracy's."""

import math

import numpy as np
import pytest
import torch
from helpers import TECHNIQUES, open_scoring_run, populate_drafts
from scipy import stats as scipy_stats

from arte_core.config import RunConfig
from arte_core.errors import ArteError
from arte_core.health import signal_health
from arte_core.models.hf import HFGenerator
from arte_core.models.logprob import answer_logprobs, common_prefix_length
from arte_core.pipeline import run_stage
from arte_core.prompts import icl_prompt
from arte_core.stages.pair_evidence import (WILCOXON, question_logprob_test, rationale_logprob_test,
                                            wilcoxon_p)
from arte_core.stages.pairs import build_pairs, load_signal_scores
from arte_core.stages.score import answer_context, answer_target, demo_answer, score_drafts
from arte_core.store import SCHEMA_VERSION, Store, signals, utcnow
from arte_core.store.schema import MIGRATIONS

DEMO = "Q: True and False is\nA: Let's think step by step. True and False = False. So the answer is False.\n\n"
QUESTIONS = ["Q: not True or True is\nA: Let's think step by step. So the answer is",
             "Q: ( False ) and not False is\nA: Let's think step by step. So the answer is"]


def hand_logprob(model, tokenizer, context: str, answer: str) -> float:
    """log P(answer | context) from one plain forward pass over the whole text, summed by hand."""
    context_ids = tokenizer(context)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([context_ids + answer_ids])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    return sum(float(logprobs[len(context_ids) - 1 + k, token]) for k, token in enumerate(answer_ids))


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return HFGenerator.load(tiny_model_dir)


def test_the_answer_logprob_is_the_log_softmax_sum_of_the_answer_tokens(tiny):
    contexts = [DEMO + q for q in QUESTIONS]
    answers = [" True", " False and ( True )"]  # one token, and several
    found = answer_logprobs(tiny, contexts, answers, rows_per_forward=1)
    assert common_prefix_length([tiny.encode(c) for c in contexts]) > 20  # the demo ran once, as a shared prefix
    assert found[1].n_tokens > 1
    for result, context, answer in zip(found, contexts, answers):
        assert result.total == pytest.approx(hand_logprob(tiny.model, tiny.tokenizer, context, answer), abs=1e-4)
        assert result.per_token == pytest.approx(result.total / result.n_tokens)
    # batched rows of unequal length (left-padded after the prefix) give the same values
    together = answer_logprobs(tiny, contexts, answers)
    assert [r.total for r in together] == pytest.approx([r.total for r in found], abs=1e-4)


def test_an_answer_without_tokens_is_refused(tiny):
    with pytest.raises(ArteError, match="no tokens"):
        answer_logprobs(tiny, [DEMO], [""])


PREF_ITEMS = [("not ( True ) and ( True ) is", "False"), ("True and not False is", "True"),
              ("not not True is", "True"), ("True or False is", "False")]


@pytest.fixture
def ctx(tmp_path, tiny_model_dir):
    context = open_scoring_run(tmp_path, tiny_model_dir, "logprob", 6, PREF_ITEMS,
                               [("True and False is", "False"), ("not False or False is", "True")])
    yield context
    context.store.close()


def test_the_score_stage_stores_each_answer_logprob_and_the_drafts_mean(ctx):
    n_drafts = 2 * len(TECHNIQUES)
    assert score_drafts(ctx) == n_drafts  # accuracy only: no log-probability is measured
    assert ctx.store.scalar("SELECT count(answer_logprob) FROM icl_items") == 0
    assert ctx.store.scalar("SELECT count(mean_answer_logprob) FROM icl_scores") == 0
    outputs = ctx.store.rows("SELECT rationale_id, item_index, output FROM icl_items ORDER BY ALL")

    ctx.config.score.metric = "answer_logprob"
    generator = ctx.models.student()
    generated = []
    original = generator.generate_each
    generator.generate_each = lambda *a, **k: generated.append(1) or original(*a, **k)
    assert score_drafts(ctx) == 0  # every draft was scored: only its log-probabilities are added
    assert generated == []  # and no answer was generated again
    assert ctx.store.rows("SELECT rationale_id, item_index, output FROM icl_items ORDER BY ALL") == outputs
    assert ctx.store.scalar("SELECT count(answer_logprob) FROM icl_items") == n_drafts * 4

    draft = ctx.store.rationales(ctx.run_id, "draft")[-1]
    rows = ctx.store.rows("SELECT item_index, answer_logprob, answer_logprob_per_token FROM icl_items "
                          "WHERE rationale_id = ? ORDER BY item_index", [draft["rationale_id"]])
    for row, (question, target) in zip(rows, PREF_ITEMS):
        context = answer_context(icl_prompt(draft["question"], draft["text"], demo_answer(draft), question), "completion")
        assert context.endswith("A: Let's think step by step. So the answer is")
        expected = hand_logprob(generator.model, generator.tokenizer, context, answer_target(target))
        assert row["answer_logprob"] == pytest.approx(expected, abs=1e-4)
        n_tokens = len(generator.tokenizer(answer_target(target), add_special_tokens=False)["input_ids"])
        assert row["answer_logprob_per_token"] == pytest.approx(expected / n_tokens, abs=1e-4)
    mean = ctx.store.scalar("SELECT mean_answer_logprob FROM icl_scores WHERE rationale_id = ?", [draft["rationale_id"]])
    assert mean == pytest.approx(np.mean([r["answer_logprob"] for r in rows]))


def test_asking_for_the_metric_reruns_a_done_score_stage_once(ctx):
    n_drafts = 2 * len(TECHNIQUES)
    assert run_stage(ctx, "score") == {"n_scored_now": n_drafts}
    assert run_stage(ctx, "score") is None  # done: accuracy asks nothing more
    ctx.config.score.metric = "answer_logprob"
    assert run_stage(ctx, "score") == {"n_scored_now": 0}  # only the log-probabilities are added
    assert ctx.store.scalar("SELECT count(mean_answer_logprob) FROM icl_scores") == n_drafts
    assert run_stage(ctx, "score") is None
    ctx.config.score.metric = "accuracy"
    assert run_stage(ctx, "score") is None  # a run that has both serves accuracy too


def _without_logprob_columns(store: Store) -> None:
    """The store as schema 5 (the migration written beside this one) left it: no log-probability columns."""
    store.execute("DROP INDEX icl_scores_run")  # DuckDB drops no column of a table with an index
    for stmt in MIGRATIONS[6]:
        table, column = stmt.split()[2], stmt.split()[-2]
        store.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    store.execute("CREATE INDEX icl_scores_run ON icl_scores(run_id, student)")
    store.execute("UPDATE schema_version SET version = 5")


def test_a_store_of_schema_5_upgrades_with_null_logprobs_and_the_migration_can_meet_its_columns(tmp_path):
    path = tmp_path / "old.duckdb"
    with Store(path) as store:
        populate_drafts(store, "run-a", "stu", n_questions=2, n_items=3)
        _without_logprob_columns(store)
    with Store(path) as upgraded:
        assert upgraded.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
        assert upgraded.scalar("SELECT count(*) FROM icl_items WHERE answer_logprob IS NULL") == 2 * len(TECHNIQUES) * 3
        assert signals.drafts_missing_answer_logprob(upgraded, "run-a", "stu") == {
            r["rationale_id"] for r in upgraded.rows("SELECT rationale_id FROM icl_scores")}
        names = {r["column_name"] for r in upgraded.rows("DESCRIBE candidate_answers")}
        assert {"answer_logprob", "answer_logprob_per_token"} <= names
        # Migrations 5 and 6 were written side by side: 6 leaves a table that already has its columns alone
        for stmt in MIGRATIONS[6]:
            upgraded.execute(stmt)
        assert upgraded.scalar("SELECT count(*) FROM icl_items") == 2 * len(TECHNIQUES) * 3


def test_the_wilcoxon_p_of_a_pair_matches_scipy_and_the_exact_value_by_hand():
    # six items, all favouring the chosen draft, no ties: exact two-sided p = 2 / 2**6
    chosen = {i: -1.0 + 0.1 * i for i in range(6)}
    rejected = {i: -1.0 - 0.05 * i - 0.01 for i in range(6)}
    test = rationale_logprob_test(chosen, rejected)
    assert test.p_value == pytest.approx(2 / 64)
    assert (test.n_shared, test.n_chosen_only, test.n_rejected_only, test.pair_test) == (6, 6, 0, WILCOXON)
    assert test.passes(0.05) and not test.passes(0.01)
    # a mixed case against scipy itself; an item without difference is dropped (no direction)
    differences = [0.3, -0.1, 0.7, 1.2, -0.4, 0.9, 0.0, 0.25]
    assert wilcoxon_p(differences) == pytest.approx(scipy_stats.wilcoxon([d for d in differences if d]).pvalue)
    assert wilcoxon_p([0.0, 0.0]) == 1.0
    # question pairs compare each question's mean over its rationales, item by item
    q = question_logprob_test([{0: -1.0, 1: -2.0}, {0: -3.0, 1: -2.0}], [{0: -2.5, 1: -2.2}])
    assert (q.n_shared, q.n_chosen_only, q.n_rejected_only) == (2, 2, 0)
    assert q.p_value == pytest.approx(2 / 4)  # two items, both for the chosen side: exact p = 2 / 2**2


def _set_logprobs(store: Store, run_id: str, student: str, by_draft: dict[str, list[float]]) -> None:
    for rid, values in by_draft.items():
        signals.add_answer_logprobs(store, student, rid, {i: (v, v) for i, v in enumerate(values)})


def test_pairs_rank_on_answer_logprob_and_carry_a_wilcoxon_test(ctx):
    score_drafts(ctx)
    student = ctx.config.student
    drafts = [r["rationale_id"] for r in ctx.store.rationales(ctx.run_id, "draft")]
    ctx.config.pairs.score = "answer_logprob"
    with pytest.raises(ArteError, match="--score.metric answer_logprob"):
        load_signal_scores(ctx, student, "icl")
    # per draft k: item i's log-probability -(k + 1)(1 + i / 10), so a lower k ranks higher on every item
    _set_logprobs(ctx.store, ctx.run_id, student, {rid: [-(k + 1) * (1 + i / 10) for i in range(4)]
                                                   for k, rid in enumerate(drafts)})
    scores = {r["rationale_id"]: r["score"] for r in load_signal_scores(ctx, student, "icl")}
    assert scores[drafts[0]] == pytest.approx(-1.15) and scores[drafts[3]] == pytest.approx(-4.6)
    pairs = {(p["kind"], p["chosen_ref"], p["rejected_ref"]): p for p in build_pairs(ctx, student, "icl")}
    # each question's best vs worst rationale: its first technique against its second
    for q in range(2):
        pair = pairs["rationale", drafts[2 * q], drafts[2 * q + 1]]
        assert pair["chosen_score"] > pair["rejected_score"]
        assert (pair["pair_test"], pair["n_shared"], pair["n_chosen_only"], pair["n_rejected_only"]) == (WILCOXON, 4, 4, 0)
        # differences 1.0, 1.1, 1.2, 1.3: four untied items for the chosen side, exact p = 2 / 2**4
        assert pair["p_value"] == pytest.approx(2 / 16)


def test_health_shows_the_reliability_of_both_metrics_with_their_difference(tmp_path):
    rng = np.random.default_rng(0)
    with Store(tmp_path / "h.duckdb") as store:
        populate_drafts(store, "run-a", "stu", n_questions=5, n_items=8)
        store.insert("pref_items", [dict(run_id="run-a", item_index=i, input=f"q{i}", target=["True", "False"][i % 2])
                                    for i in range(8)])
        store.insert("runs", [dict(run_id="run-a", task="boolean_expressions", task_source="builtin", teacher="t",
                                   student="stu", fingerprint="f", config_yaml=RunConfig().to_yaml(),
                                   created_at=utcnow())])
        drafts = sorted(r["rationale_id"] for r in store.rows("SELECT rationale_id FROM icl_scores"))
        quality = np.linspace(-2, 0, len(drafts))  # a draft's log-probabilities follow its quality, plus noise
        _set_logprobs(store, "run-a", "stu", {rid: list(q + 0.05 * rng.standard_normal(8))
                                              for rid, q in zip(drafts, quality)})
        lines = {line.key: line for line in signal_health(store, "run-a", "stu")}
        expected = signals.signal_reliability(store, "run-a", "stu", "answer_logprob")
        accuracy = signals.signal_reliability(store, "run-a", "stu", "icl")
        difference = signals.metric_reliability_difference(store, "run-a", "stu")
    accuracy_line, logprob_line = lines["reliability"], lines["reliability_answer_logprob"]
    assert accuracy_line.value is not None and accuracy_line.ci_low is not None
    assert logprob_line.value == pytest.approx(expected["reliability"], abs=1e-4) and logprob_line.value > 0.95
    assert (logprob_line.ci_low, logprob_line.ci_high, logprob_line.n) == (
        pytest.approx(expected["ci_low"], abs=1e-4), pytest.approx(expected["ci_high"], abs=1e-4), 5 * len(TECHNIQUES))
    assert logprob_line.status == "ok"
    assert accuracy_line.value == pytest.approx(accuracy["reliability"], abs=1e-4)
    # every draft has both metrics, so the difference is over the same drafts the two lines report
    assert difference["n_drafts"] == 5 * len(TECHNIQUES) and difference["score"] == "balanced_accuracy"
    assert difference["difference"] == pytest.approx(expected["reliability"] - accuracy["reliability"])
    assert f"{difference['difference']:+.2f}" in logprob_line.message and "paired bootstrap" in logprob_line.message
    assert math.isfinite(difference["ci_low"]) and difference["ci_low"] <= difference["difference"] <= difference["ci_high"]


def test_a_logprob_that_ranks_label_confidence_is_flagged_whatever_its_reliability(tmp_path):
    """Drafts that make the student repeat the demo's label get a low log P(target) on half the items: a
    reliable ranking that says nothing of the question. Health says so instead of calling it ok."""
    rng = np.random.default_rng(1)
    with Store(tmp_path / "h.duckdb") as store:
        populate_drafts(store, "run-a", "stu", n_questions=6, n_items=8)
        store.insert("pref_items", [dict(run_id="run-a", item_index=i, input=f"q{i}", target=["True", "False"][i % 2])
                                    for i in range(8)])
        store.insert("runs", [dict(run_id="run-a", task="boolean_expressions", task_source="builtin", teacher="t",
                                   student="stu", fingerprint="f", config_yaml=RunConfig().to_yaml(), created_at=utcnow())])
        copies = {r["rationale_id"]: r["label_copy_rate"] for r in store.rows("SELECT * FROM icl_scores")}
        _set_logprobs(store, "run-a", "stu", {rid: list(-0.7 - 2 * copy + 0.05 * rng.standard_normal(8))
                                              for rid, copy in copies.items()})
        line = {line.key: line for line in signal_health(store, "run-a", "stu")}["reliability_answer_logprob"]
        difference = signals.metric_reliability_difference(store, "run-a", "stu")
    assert line.value > 0.8 and line.status == "warn"
    assert difference["copy_spearman"] < 0 and difference["copy_ci_high"] < 0
    assert "undecided" in line.message and "above chance" in line.message


def test_a_drafts_detail_shows_its_answer_logprobs_once_measured(tmp_path):
    from arte_core.store.drafts import rationale_detail

    with Store(tmp_path / "d.duckdb") as store:
        populate_drafts(store, "run-a", "stu", n_questions=1, n_items=3)
        rid = store.rows("SELECT rationale_id FROM icl_scores ORDER BY rationale_id")[0]["rationale_id"]
        before = rationale_detail(store, rid, "stu")
        _set_logprobs(store, "run-a", "stu", {rid: [-0.5, -1.0, -3.0]})
        after = rationale_detail(store, rid, "stu")
    assert "answer_logprob" not in before["items"] and "mean_answer_logprob" not in before["scores"]
    assert list(after["items"]["answer_logprob"]) == [-0.5, -1.0, -3.0]
    assert after["scores"]["mean_answer_logprob"].iloc[0] == pytest.approx(-1.5)

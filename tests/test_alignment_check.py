"""The alignment check (issue 16 item 2): base and aligned teacher drafts scored by the same student on a
held-out check split; the paired comparison's numbers on hand-made items; the split's rules; the health line
and the Analysis figure that show it."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import bootstrap

from arte_core.config import RunConfig
from arte_core.context import open_run
from arte_core.health import alignment_check_lines
from arte_core.pipeline import run_stage
from arte_core.progress import Reporter
from arte_core.stages.check import check_items, paired_difference, run_check, summarise
from arte_core.stages.elicit import question_id, rationale_id
from arte_core.store import Store, alignment, utcnow
from arte_core.studio import analysis as analysis_view
from arte_core.tasks import load_task
from arte_core.tasks.base import input_key
from test_stages import scored_run, tiny_config

RUN = "check-run"


def check_config(model_dir: str, tmp_path, n_items: int = 6) -> RunConfig:
    config = RunConfig(task="boolean_expressions", teacher=model_dir, student=model_dir,
                       runs_dir=str(tmp_path / "runs"), run_name=RUN)
    config.score.n_pref, config.eval.n_test = 4, 3
    config.score.max_new_tokens, config.score.engine = 8, "batched"
    config.check.n_items, config.check.n_resamples = n_items, 200
    return config


def open_check_run(model_dir: str, tmp_path, path=None, n_items: int = 6):
    store = Store(path or tmp_path / "store.duckdb")
    return open_run(check_config(model_dir, tmp_path, n_items), store,
                    Reporter(tmp_path / "events.jsonl", show_bar=False))


def add_arm(ctx, origin: str, questions: list[tuple[str, str]], answers: list[str]) -> None:
    """Regenerated questions with one plain rationale each, as like-for-like regeneration stores them."""
    rows_q, rows_r = [], []
    owner = {"student": ctx.config.student}  # like-for-like arms belong to their student
    for idx, ((text, target), answer) in enumerate(zip(questions, answers)):
        qid = question_id(ctx.run_id, origin, idx)
        rows_q.append(dict(question_id=qid, run_id=ctx.run_id, origin=origin, idx=idx, input=text, target=target,
                           solver_target=target, solver_agrees=True, teacher="hand", call_index=0, created_at=utcnow(), **owner))
        text_r = f"We evaluate {text} step by step. So the answer is {answer}."
        rows_r.append(dict(rationale_id=rationale_id(qid, "step_by_step"), question_id=qid, run_id=ctx.run_id,
                           origin=origin, technique="step_by_step", prompt="p", text=text_r, answer=answer,
                           answer_parsed=True, matches_target=answer == target, word_count=len(text_r.split()),
                           n_tokens=12, teacher="hand", temperature=0.0, seed=0, created_at=utcnow(), **owner))
    with ctx.store.transaction():
        ctx.store.insert("questions", rows_q)
        ctx.store.insert("rationales", rows_r)


ARM_QUESTIONS = [("not True and True is", "False"), ("True or not False is", "True")]


# -- the held-out split ------------------------------------------------------------------------------

def test_check_split_is_disjoint_stratified_and_stable_across_reopen(tmp_path, tiny_model_dir):
    ctx = open_check_run(tiny_model_dir, tmp_path, n_items=10)
    # A pool question of the run (as `elicit.question_source: pool` stores them) may not become a check item.
    pool_question = next(e for e in ctx.task.pool()
                         if input_key(e.input) not in {input_key(r["input"]) for r in ctx.pref_items + ctx.test_items})
    add_arm(ctx, "base", [(pool_question.input, pool_question.target)], [pool_question.target])
    drawn = check_items(ctx)
    assert len(drawn) == 10 and [r["item_index"] for r in drawn] == list(range(10))
    keys = {input_key(r["input"]) for r in drawn}
    assert len(keys) == 10
    assert not keys & {input_key(r["input"]) for r in ctx.pref_items}
    assert not keys & {input_key(r["input"]) for r in ctx.test_items}
    assert input_key(pool_question.input) not in keys
    assert not keys & {input_key(e.input) for e in ctx.task.exemplars}
    labels = pd.Series([ctx.task.normalise(r["target"]) for r in drawn]).value_counts()
    assert labels.to_dict() == {"True": 5, "False": 5}  # stratified: labels in turns
    ctx.store.close()

    # Reopened, with another size asked for: the stored split is kept, not redrawn.
    again = open_check_run(tiny_model_dir, tmp_path, path=tmp_path / "store.duckdb", n_items=4)
    assert again.store.split(RUN, "check_items") == drawn
    assert check_items(again) == drawn
    again.store.close()


# -- the paired comparison on hand-made per-item numbers ---------------------------------------------

BASE = np.array([0.50, 0.25, 0.75, 0.00, 1.00, 0.50])
ALIGNED = np.array([0.60, 0.45, 1.05, 0.40, 1.50, -0.10])  # differences 0.1, 0.2, 0.3, 0.4, 0.5, -0.6


def test_paired_difference_is_literal_and_matches_a_hand_check():
    result = paired_difference(BASE, ALIGNED, n_resamples=2000, seed=3)
    # Mean of the per-item differences: (0.1 + 0.2 + 0.3 + 0.4 + 0.5 - 0.6) / 6 = 0.15.
    assert result["difference"] == pytest.approx(0.15)
    assert (result["n_items"], result["n_better"], result["n_worse"], result["n_tied"]) == (6, 5, 1, 0)
    # Wilcoxon, exact for 6 untied ranks: W- = 6 (the -0.6 item has rank 6); subsets of {1..6} summing to at most 6:
    # {}, 1, 2, 3, 12, 4, 13, 5, 14, 23, 6, 15, 24, 123 = 14 of 64 sign patterns; two-sided p = 2 · 14 / 64.
    assert result["wilcoxon_p"] == pytest.approx(28 / 64)
    # Sign test, 5 of 6 better: P(X >= 5) + P(X <= 1) for X ~ Bin(6, 1/2) = 14 / 64.
    assert result["sign_p"] == pytest.approx(14 / 64)
    # The seeded interval, literally; then an independent percentile bootstrap (scipy's, paired) agrees.
    assert (round(result["ci_low"], 4), round(result["ci_high"], 4)) == (-0.1667, 0.3833)
    scipy_ci = bootstrap((BASE, ALIGNED), lambda b, a, axis: np.mean(a - b, axis=axis), paired=True,
                         n_resamples=20000, method="percentile", random_state=np.random.default_rng(0)).confidence_interval
    assert result["ci_low"] == pytest.approx(scipy_ci.low, abs=0.03)
    assert result["ci_high"] == pytest.approx(scipy_ci.high, abs=0.03)
    assert paired_difference(BASE, ALIGNED, n_resamples=2000, seed=3) == result  # seeded: the same again


def test_equal_arms_give_zero_with_a_degenerate_interval_and_p_one():
    result = paired_difference(BASE, BASE, n_resamples=500, seed=0)
    assert (result["difference"], result["ci_low"], result["ci_high"]) == (0.0, 0.0, 0.0)
    assert (result["n_tied"], result["wilcoxon_p"], result["sign_p"]) == (6, 1.0, 1.0)


def hand_answers() -> pd.DataFrame:
    """4 check items (True, False, True, False); base: 2 drafts answering True everywhere; aligned: 2 drafts,
    one right everywhere, one right on items 0 and 1 and unparsed, cut off, on items 2 and 3."""
    targets = ["True", "False", "True", "False"]
    rows = []
    for rid in ("b0", "b1"):
        rows += [dict(origin="base", rationale_id=rid, item_index=i, target=t, answer="True", correct=t == "True",
                      parse_mode="strict", truncated=False, demo_answer="True", demo_target="True")
                 for i, t in enumerate(targets)]
    rows += [dict(origin="arte", rationale_id="a0", item_index=i, target=t, answer=t, correct=True,
                  parse_mode="strict", truncated=False, demo_answer="False", demo_target="False")
             for i, t in enumerate(targets)]
    rows += [dict(origin="arte", rationale_id="a1", item_index=i, target=t, answer=t if i < 2 else None,
                  correct=i < 2, parse_mode="strict" if i < 2 else "none", truncated=i >= 2, demo_answer=None,
                  demo_target="True")
             for i, t in enumerate(targets)]
    return pd.DataFrame(rows)


def test_summary_from_hand_made_answers():
    summary = summarise(hand_answers(), load_task("boolean_expressions"), n_resamples=500, seed=1)
    base, aligned = summary["arms"]["base"], summary["arms"]["arte"]
    assert (summary["n_items"], summary["label_counts"], summary["majority_share"]) == (4, {"True": 2, "False": 2}, 0.5)
    assert (base["n_drafts"], base["n_answers"], aligned["n_drafts"]) == (2, 8, 2)
    # Per item, share of drafts right: base (1, 0, 1, 0), aligned (1, 1, 0.5, 0.5).
    assert base["accuracy"]["value"] == 0.5 and aligned["accuracy"]["value"] == 0.75
    # Balanced: base recalls True 1, False 0 -> 0.5; aligned True (1 + 0.5) / 2, False (1 + 0.5) / 2 -> 0.75.
    assert base["balanced_accuracy"]["value"] == 0.5 and aligned["balanced_accuracy"]["value"] == 0.75
    assert aligned["unparsed"]["value"] == 0.25 and aligned["truncated"]["value"] == 0.25
    assert base["unparsed"]["value"] == 0.0
    # Base drafts repeat their demo's True everywhere; aligned a0 answers False (its demo) on 2 of 4 items,
    # a1 (demo: its question's target, True) on item 0 only: 3 of 8.
    assert base["label_copy"]["value"] == 1.0 and aligned["label_copy"]["value"] == 3 / 8
    # Differences per item: 0, 1, -0.5, 0.5 -> mean 0.25; 2 better, 1 worse, 1 tied.
    assert summary["difference"] == 0.25
    assert (summary["n_better"], summary["n_worse"], summary["n_tied"]) == (2, 1, 1)
    assert summary["ci_low"] <= 0.25 <= summary["ci_high"]


# -- the stage on a tiny random model ----------------------------------------------------------------

def test_check_stage_stores_both_teachers_scores_and_resumes(tmp_path, tiny_model_dir):
    ctx = open_check_run(tiny_model_dir, tmp_path, n_items=4)
    student = ctx.config.student
    add_arm(ctx, "base", ARM_QUESTIONS, ["False", "True"])
    add_arm(ctx, "arte", ARM_QUESTIONS, ["True", "True"])
    info = run_stage(ctx, "check", student)

    scored = alignment.check_draft_scores(ctx.store, RUN, student)
    assert scored.groupby("origin")["rationale_id"].count().to_dict() == {"arte": 2, "base": 2}
    assert set(scored["n_items"]) == {4}
    assert ctx.store.count_rows("alignment_scores", RUN, student) == 16
    stored = alignment.alignment_check(ctx.store, RUN, student)
    assert stored == info  # the stage's summary, as the store reads it back from the stage's status
    assert stored["n_items"] == 4 and stored["n_scored_now"] == 4
    assert {o: stored["arms"][o]["n_drafts"] for o in ("base", "arte")} == {"base": 2, "arte": 2}
    answers = alignment.check_answers(ctx.store, RUN, student)
    for origin in ("base", "arte"):
        mean = float(answers[answers["origin"] == origin]["correct"].mean())
        assert stored["arms"][origin]["accuracy"]["value"] == pytest.approx(mean)
    assert stored["difference"] == pytest.approx(stored["arms"]["arte"]["accuracy"]["value"]
                                                 - stored["arms"]["base"]["accuracy"]["value"])
    assert stored["ci_low"] is not None and stored["ci_low"] <= stored["difference"] <= stored["ci_high"]
    assert run_stage(ctx, "check", student) is None  # done: skipped

    # A kill after one draft's answers: only the missing draft is answered again, with the same reading.
    lost = scored["rationale_id"].iloc[0]
    ctx.store.execute("DELETE FROM alignment_scores WHERE rationale_id = ?", [lost])
    again = run_check(ctx, student)
    assert again["n_scored_now"] == 1
    assert {k: v for k, v in again.items() if k != "n_scored_now"} == \
        {k: v for k, v in stored.items() if k != "n_scored_now"}

    # The health line and the Analysis figure show it with its n and interval.
    line = alignment_check_lines(ctx.store, RUN, student)[0]
    assert line.status in ("ok", "warn", "bad") and line.n == 4 and line.ci_low is not None
    assert "4 held-out items" in line.message
    figure = analysis_view._alignment_or_origin_figure(ctx.store, RUN, student)
    assert [len(t.y) for t in figure.data] == [2, 2, 1]
    assert "n = 4 held-out items" in figure.layout.title.text
    ctx.store.close()


@pytest.mark.slow
def test_check_after_a_real_regenerate_scores_both_arms_on_items_no_arm_question_is(tmp_path, tiny_model_dir):
    """pairs → align → regenerate for real on a tiny model (pool questions, so the random teacher writes both
    arms), then the check."""
    config = tiny_config(tiny_model_dir, tmp_path, elicit__question_source="pool")
    config.check.n_items, config.check.n_resamples = 6, 200
    ctx = open_run(config, Store(tmp_path / "store.duckdb"), Reporter(tmp_path / "events.jsonl", show_bar=False))
    scored_run(ctx)
    for stage in ("pairs", "align", "regenerate"):
        run_stage(ctx, stage)
    student = ctx.config.student
    arms = {origin: ctx.store.rationales(ctx.run_id, origin, student) for origin in alignment.ARMS}
    assert arms["base"] and len(arms["base"]) == len(arms["arte"])
    summary = run_stage(ctx, "check")
    assert summary["n_items"] == 6 and summary["n_scored_now"] == 2 * len(arms["base"])
    assert {o: summary["arms"][o]["n_drafts"] for o in alignment.ARMS} == {o: len(arms[o]) for o in alignment.ARMS}
    scored = alignment.check_draft_scores(ctx.store, ctx.run_id, student)
    assert set(scored["rationale_id"]) == {r["rationale_id"] for arm in arms.values() for r in arm}
    held_out = {input_key(r["input"]) for r in ctx.store.split(ctx.run_id, "check_items")}
    assert not held_out & {input_key(r["question"]) for arm in arms.values() for r in arm}
    assert not held_out & {input_key(r["input"]) for r in ctx.pref_items + ctx.test_items}
    assert alignment_check_lines(ctx.store, ctx.run_id, student)[0].n == 6
    ctx.store.close()


def test_a_check_item_that_is_also_a_demo_question_is_left_out_of_that_students_check(tmp_path, tiny_model_dir):
    ctx = open_check_run(tiny_model_dir, tmp_path, n_items=4)
    leaked = check_items(ctx)[0]  # drawn first (a run whose arms come later), then written as an arm's question
    add_arm(ctx, "base", [(leaked["input"], leaked["target"])], [leaked["target"]])
    add_arm(ctx, "arte", [(leaked["input"], leaked["target"])], [leaked["target"]])
    summary = run_check(ctx, ctx.config.student)
    assert summary["n_items"] == 3
    answered = alignment.check_answers(ctx.store, RUN, ctx.config.student)["item_index"]
    assert set(answered) == {1, 2, 3}
    ctx.store.close()


def test_health_line_judges_the_interval_of_aligned_minus_base(tmp_path, tiny_model_dir):
    ctx = open_check_run(tiny_model_dir, tmp_path)
    student = ctx.config.student
    assert alignment_check_lines(ctx.store, RUN, student) == []  # no base drafts: no line
    add_arm(ctx, "base", ARM_QUESTIONS, ["False", "True"])
    add_arm(ctx, "arte", ARM_QUESTIONS, ["True", "True"])
    assert [line.status for line in alignment_check_lines(ctx.store, RUN, student)] == ["n/a"]
    arms = {o: dict(n_drafts=2, accuracy=dict(value=0.5, ci_low=0.3, ci_high=0.7)) for o in ("base", "arte")}
    for (low, high), status in (((0.05, 0.3), "ok"), ((-0.1, 0.3), "warn"), ((-0.4, -0.02), "bad")):
        summary = dict(arms=arms, n_items=40, difference=(low + high) / 2, ci_low=low, ci_high=high, n_better=3,
                       n_worse=1, n_tied=36, wilcoxon_p=0.3, sign_p=0.6)
        ctx.store.mark_done(RUN, "check", student, summary)
        line = alignment_check_lines(ctx.store, RUN, student)[0]
        assert (line.status, line.ci_low, line.ci_high, line.n) == (status, low, high, 40)
    ctx.store.close()

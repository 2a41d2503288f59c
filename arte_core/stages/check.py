"""The alignment check, before any SFT (issue 16 item 2): did the aligned teacher learn what the student prefers?

The base teacher's and the aligned teacher's regenerated drafts (origins 'base' and 'arte': the same prompts,
decoding and sizes) are each the student's only demo on held-out check items, exactly as the score stage
scores drafts (its one-shot prompt, engine, budget and answer reading, imported from stages/score.py). The
check items are drawn once per run from the task's pool outside the preference and test splits, every
question of the run and any `irt` candidate, so no pair was built from them and no demo holds their answer;
they are stratified by label like the preference split.

The comparison pairs by item, since both arms answer the same items: per item, each arm's share of drafts
right; the difference aligned − base is the mean over items of the per-item differences, with a seeded
percentile bootstrap interval over items, a Wilcoxon signed-rank p and an exact sign p over the items where
the arms differ. The interval conditions on these drafts: it says whether, on items like these, this
aligned teacher's drafts teach the student better than the base teacher's.

Resumable: each draft's answers commit together and are never recomputed; the summary is recomputed from
the stored answers and kept in the stage's status info (store/alignment.py reads it).
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
from scipy.stats import binomtest, wilcoxon

from arte_core.context import RunContext, seeded
from arte_core.errors import ArteError
from arte_core.stages.score import answer_drafts, draft_item_rows
from arte_core.stats import bootstrap_ci
from arte_core.store import alignment
from arte_core.tasks import Example, Task
from arte_core.tasks.answers import is_label_task
from arte_core.tasks.base import input_key, take_in_turns

# Salts of the run's seed (context.seeded): the check split's draw and the bootstrap's resamples.
SPLIT_SALT, BOOTSTRAP_SALT = 6, 7


def draw_check_items(task: Task, excluded_inputs: list[str], n_items: int, seed: int) -> list[Example]:
    """Up to `n_items` labelled examples of the task's pool whose inputs are not excluded: with a label set,
    labels taken in turns (equal shares within one item, as the preference split), else a seeded draw."""
    excluded = {input_key(text) for text in excluded_inputs}
    pool = [e for e in task.pool() if input_key(e.input) not in excluded and task.normalise(e.target) is not None]
    rng = random.Random(seed)
    labels = task.split_labels(pool)
    if not labels:
        rng.shuffle(pool)
        return pool[:n_items]
    by_label, turn_order = task.shuffled_by_label(pool, labels, rng)
    return take_in_turns(by_label, turn_order, n_items)


def check_items(ctx: RunContext) -> list[dict]:
    """The run's check split: the stored one, or drawn now (the first time the check runs) and stored."""
    stored = ctx.store.split(ctx.run_id, "check_items")
    if stored:
        return stored
    excluded = [r["input"] for r in ctx.pref_items + ctx.test_items] + alignment.run_question_inputs(ctx.store, ctx.run_id)
    drawn = draw_check_items(ctx.task, excluded, ctx.config.check.n_items, seeded(ctx.config.seed, SPLIT_SALT))
    if not drawn:
        raise ArteError(f"task '{ctx.task.name}' has no labelled example left for the alignment check outside its seed "
                        f"exemplars, the run's {len(ctx.pref_items)} preference and {len(ctx.test_items)} test items "
                        f"and its questions ({ctx.task.source}); lower score.n_pref or eval.n_test, or add examples.")
    if len(drawn) < ctx.config.check.n_items:
        ctx.reporter.log(f"the task's pool holds {len(drawn)} items for the alignment check "
                         f"(check.n_items asks for {ctx.config.check.n_items}).")
    ctx.store.save_split(ctx.run_id, "check_items", drawn)
    return ctx.store.split(ctx.run_id, "check_items")


def arm_drafts(ctx: RunContext, origin: str, student: str) -> list[dict]:
    """One teacher's regenerated drafts for `student`, the first check.n_drafts by question (0 = all)."""
    drafts = ctx.store.rationales(ctx.run_id, origin, student=student)
    n = ctx.config.check.n_drafts
    return drafts[:n] if n else drafts


def run_check(ctx: RunContext, student: str) -> dict:
    """Score every base and aligned teacher draft not yet answered on the check items, then summarise."""
    store, scored_now = ctx.store, 0
    drafts = {origin: arm_drafts(ctx, origin, student) for origin in alignment.ARMS}
    # The split is drawn once per run; a student whose arms were written later could have a demo question
    # equal to a check item (a pool question, say): such items are left out of this student's check.
    demo_questions = {input_key(d["question"]) for arm in drafts.values() for d in arm}
    items = [item for item in check_items(ctx) if input_key(item["input"]) not in demo_questions]
    if not items:
        raise ArteError(f"every check item of run '{ctx.run_id}' is also a question of {student}'s regenerated "
                        "drafts; the check has nothing held out to score.")
    for origin in alignment.ARMS:
        done = alignment.answered_rationale_ids(store, ctx.run_id, student)
        todo = [d for d in drafts[origin] if d["rationale_id"] not in done]
        if not todo:
            continue

        def keep(draft, outputs, origin=origin):
            rows = draft_item_rows(ctx, draft, student, items, outputs)
            alignment.add_check_answers(store, [dict(row, run_id=ctx.run_id, origin=origin) for row in rows])

        answer_drafts(ctx, student, todo, items, f"alignment check ({alignment.ARM_NAMES[origin]}, {student})", keep)
        scored_now += len(todo)
    answers = alignment.check_answers(store, ctx.run_id, student)
    kept = {d["rationale_id"] for arm in drafts.values() for d in arm}
    held_out = {item["item_index"] for item in items}
    answers = answers[answers["rationale_id"].isin(kept) & answers["item_index"].isin(held_out)]
    summary = summarise(answers, ctx.task, ctx.config.check.n_resamples, seeded(ctx.config.seed, BOOTSTRAP_SALT))
    return {"n_scored_now": scored_now, **summary}


def paired_difference(base: np.ndarray, aligned: np.ndarray, n_resamples: int, seed: int) -> dict:
    """aligned − base over items both arms answered (`base[i]`, `aligned[i]`: item i's share of drafts right):
    the mean difference, its percentile bootstrap interval over items (seeded), the Wilcoxon signed-rank p
    (scipy; zero differences dropped) and the exact two-sided sign p over the items where the arms differ."""
    diffs = np.asarray(aligned, dtype=float) - np.asarray(base, dtype=float)
    low, high = bootstrap_ci(lambda rows: float(diffs[rows].mean()), len(diffs), n_resamples, seed)
    nonzero = diffs[~np.isclose(diffs, 0.0)]
    n_better, n_worse = int((nonzero > 0).sum()), int((nonzero < 0).sum())
    return dict(difference=float(diffs.mean()), ci_low=low, ci_high=high, n_items=len(diffs),
                n_better=n_better, n_worse=n_worse, n_tied=len(diffs) - len(nonzero),
                wilcoxon_p=float(wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0,
                sign_p=float(binomtest(n_better, len(nonzero)).pvalue) if len(nonzero) else 1.0)


def summarise(answers: pd.DataFrame, task: Task, n_resamples: int, seed: int) -> dict:
    """The check's numbers from the stored answers: per arm its drafts, accuracy (and balanced accuracy on
    label tasks) with intervals over items, its unparsed, truncated and demo-label-copy shares; the check
    items' labels; and the paired difference aligned − base (`paired_difference`)."""
    targets = answers.drop_duplicates("item_index").set_index("item_index")["target"].map(task.normalise)
    label_task = is_label_task(task.answer_format, task.labels)
    summary: dict = {"n_items": int(len(targets)), "arms": {}}
    per_item = {}
    for origin in alignment.ARMS:
        part = answers[answers["origin"] == origin]
        if part.empty:
            continue
        item_share = _item_shares(part, targets.index, task)
        per_item[origin] = item_share["correct"]
        shares = {name: _share_with_ci(item_share[name], n_resamples, seed) for name in item_share}
        arm = dict(n_drafts=int(part["rationale_id"].nunique()), n_answers=int(len(part)),
                   accuracy=shares["correct"], unparsed=shares["unparsed"], truncated=shares["truncated"],
                   label_copy=shares["label_copy"])
        if label_task:
            arm["balanced_accuracy"] = _balanced_with_ci(item_share["correct"], targets, n_resamples, seed)
        summary["arms"][origin] = arm
    labels = targets.value_counts()
    summary["label_counts"] = {str(k): int(v) for k, v in labels.items()} if label_task else {}
    summary["majority_share"] = float(labels.iloc[0] / len(targets)) if label_task and len(targets) else None
    if len(per_item) == len(alignment.ARMS):
        summary.update(paired_difference(per_item["base"].to_numpy(), per_item["arte"].to_numpy(), n_resamples, seed))
    return summary


def _item_shares(part: pd.DataFrame, items: pd.Index, task: Task) -> pd.DataFrame:
    """Per check item (in `items` order): the share of the arm's drafts right, unparsed, cut off, and answered
    with the demo's own answer (its teacher's, else its question's target, as the score stage counts copies)."""
    demo = part["demo_answer"].where(part["demo_answer"].notna(), part["demo_target"]).map(task.normalise)
    flags = pd.DataFrame({"item_index": part["item_index"], "correct": part["correct"].astype(float),
                          "unparsed": part["answer"].isna().astype(float),
                          "truncated": part["truncated"].astype("boolean").fillna(False).astype(float),
                          "label_copy": (part["answer"].notna() & (part["answer"] == demo)).astype(float)})
    return flags.groupby("item_index").mean().reindex(items)


def _share_with_ci(values: pd.Series, n_resamples: int, seed: int) -> dict:
    shares = values.to_numpy(dtype=float)
    low, high = bootstrap_ci(lambda rows: float(shares[rows].mean()), len(shares), n_resamples, seed)
    return dict(value=float(shares.mean()), ci_low=low, ci_high=high)


def _balanced_with_ci(item_correct: pd.Series, targets: pd.Series, n_resamples: int, seed: int) -> dict:
    """Mean recall per label over the check items' labels (the labels a resample holds)."""
    correct, labels = item_correct.to_numpy(dtype=float), targets.to_numpy(dtype=object)

    def balanced(rows: np.ndarray) -> float:
        return float(np.mean([correct[rows][labels[rows] == label].mean() for label in set(labels[rows])]))

    low, high = bootstrap_ci(balanced, len(correct), n_resamples, seed)
    return dict(value=balanced(np.arange(len(correct))), ci_low=low, ci_high=high)

"""Store reads and writes of the local-data-influence signal, and its comparison with ICL accuracy.

Also each signal's split-half reliability over the preference (or reference) items, per run and
student (`signal_reliability`).

Sign convention: `influence = loss_after - loss_before` (negative = the draft helps the student), so a
draft the influence signal prefers has a LOW influence; comparisons rank by `-influence`.
"""

from __future__ import annotations

import numpy as np

from arte_core.errors import ArteError
from arte_core.stats import (average_ranks, items_needed, permutation_null, spearman, spearman_ci,
                             split_half_ci, split_half_reliability)
from arte_core.store.core import Store

# Seeded, so the same store always reports the same figures; 200 splits and 1000 resamples keep the
# Monte Carlo error of the reliability and its interval's ends well below their second decimal.
N_SPLITS = 200
N_RESAMPLES = 1000
N_PERMUTATIONS = 2000
SEED = 0
RELIABILITY_TARGET = 0.8
SIGNALS = ("icl", "accuracy", "balanced_accuracy", "influence")

_DRAFT_COLUMNS = (
    "r.rationale_id, r.question_id, r.technique, r.prompt, r.text, r.answer, r.matches_target, "
    "r.word_count, q.input AS question, q.target, q.idx AS question_idx"
)


def add_influence_scores(store: Store, rows: list[dict], item_rows: list[dict] = ()) -> None:
    """Probe results of several drafts and their per-reference-item losses, committed together."""
    if not rows:
        return
    with store.transaction():
        store.insert("influence_scores", rows)
        if item_rows:
            store.insert("influence_items", list(item_rows))


def influenced_rationale_ids(store: Store, run_id: str, student: str) -> set[str]:
    """Drafts that already have an influence score for this run and student."""
    return {r["rationale_id"] for r in store.rows(
        "SELECT rationale_id FROM influence_scores WHERE run_id = ? AND student = ?", [run_id, student])}


def influence_rows(store: Store, run_id: str, student: str) -> list[dict]:
    """Every probed draft rationale with its question and influence columns (like `draft_scores`)."""
    return store.rows(
        f"SELECT {_DRAFT_COLUMNS}, s.influence, s.loss_before, s.loss_after, s.mode, s.learning_rate, "
        "s.n_reference FROM rationales r JOIN questions q USING (question_id) "
        "JOIN influence_scores s ON s.rationale_id = r.rationale_id AND s.student = ? AND s.run_id = r.run_id "
        "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
        [student, run_id],
    )


def signal_comparison(store: Store, run_id: str, student: str) -> dict:
    """ICL score vs influence for the drafts that have both, for one student.

    The ICL score is the one the pairs rank on by default (`icl_score`: balanced accuracy where the
    stored scores have it, else accuracy; `icl_score_name` says which). Returns rows (rationale_id,
    question, technique, word_count, accuracy, icl_score, influence), `spearman` = rank correlation of
    the ICL score with -influence (positive = the signals agree; None with fewer than two drafts or when
    either signal is constant) with `ci_low`/`ci_high` (Fisher z, Bonett–Wright; n ≥ 4), `null`: what
    chance gives (`stats.permutation_null`: the 95% range of rho over shuffles and the p-value; n ≥ 3),
    `n`, and `disagreements`: rows that one signal ranks in its top half and the other in its bottom half
    (a draft tied at the median belongs to neither half), with their `rank_distance` (how many places
    apart the two signals rank them), largest first.
    """
    label_task = _is_label_task(store, run_id, student)
    rows = store.rows(
        "SELECT r.rationale_id, q.input AS question, r.technique, r.word_count, c.accuracy, "
        f"{'c.balanced_accuracy' if label_task else 'c.accuracy'} AS icl_score, s.influence "
        "FROM rationales r JOIN questions q USING (question_id) "
        "JOIN icl_scores c ON c.rationale_id = r.rationale_id AND c.student = ? "
        "JOIN influence_scores s ON s.rationale_id = r.rationale_id AND s.student = ? AND s.run_id = r.run_id "
        "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
        [student, student, run_id],
    )
    scores, helpfulness = [r["icl_score"] for r in rows], [-r["influence"] for r in rows]
    middle = (len(rows) + 1) / 2
    disagreements = [dict(row, rank_distance=abs(a - i))
                     for row, a, i in zip(rows, average_ranks(scores), average_ranks(helpfulness))
                     if (a - middle) * (i - middle) < 0]
    disagreements.sort(key=lambda row: -row["rank_distance"])  # stable: equal distances keep question order
    rho = spearman(scores, helpfulness, min_points=2)
    low, high = spearman_ci(rho, len(rows))
    return dict(rows=rows, spearman=rho, ci_low=low, ci_high=high, n=len(rows),
                null=permutation_null(scores, helpfulness, N_PERMUTATIONS, SEED), disagreements=disagreements,
                icl_score_name="balanced accuracy" if label_task else "accuracy")


# -- reliability ------------------------------------------------------------------------------------


def icl_item_matrix(store: Store, run_id: str, student: str) -> dict:
    """The drafts × preference items correctness table of one run and student (`icl_items`).

    Returns `rationale_ids` (rows), `item_indexes` (columns), `matrix` (1.0 = right), `targets` (each
    item's target) and `has_balanced` (the stored scores are balanced accuracies: a label task). Only
    drafts with an answer on every item are rows."""
    items = store.rows("SELECT item_index, target FROM pref_items WHERE run_id = ? ORDER BY item_index", [run_id])
    answers = store.rows(
        "SELECT i.rationale_id, i.item_index, i.correct FROM icl_items i "
        "JOIN rationales r ON r.rationale_id = i.rationale_id AND r.run_id = ? AND r.origin = 'draft' "
        "WHERE i.student = ? ORDER BY i.rationale_id, i.item_index", [run_id, student])
    return dict(_matrix(answers, [i["item_index"] for i in items], "correct", lambda r: float(r["correct"])),
                targets=[i["target"].strip() for i in items], has_balanced=_is_label_task(store, run_id, student))


def _is_label_task(store: Store, run_id: str, student: str) -> bool:
    """Whether the student's stored ICL scores are balanced accuracies (written for label tasks only)."""
    return bool(store.scalar(
        "SELECT count(*) > 0 AND count(balanced_accuracy) = count(*) FROM icl_scores WHERE run_id = ? AND student = ?",
        [run_id, student]))


def influence_item_matrix(store: Store, run_id: str, student: str) -> dict:
    """The drafts × reference items table of one run and student: each item's loss decrease after the
    draft's step (loss_before - loss_after, positive = helps, as the pairs rank influence), with
    `rationale_ids`, `item_indexes` and `targets` as `icl_item_matrix` gives them."""
    rows = store.rows(
        "SELECT f.rationale_id, f.item_index, f.loss_before - f.loss_after AS helps, p.target FROM influence_items f "
        "JOIN pref_items p ON p.run_id = f.run_id AND p.item_index = f.item_index "
        "WHERE f.run_id = ? AND f.student = ? ORDER BY f.rationale_id, f.item_index", [run_id, student])
    targets = dict(sorted({r["item_index"]: r["target"].strip() for r in rows}.items()))
    matrix = _matrix(rows, list(targets), "helps", lambda r: r["helps"])
    return dict(matrix, targets=[targets[i] for i in matrix["item_indexes"]])


def _matrix(rows: list[dict], item_indexes: list[int], name: str, value) -> dict:
    """Rows (drafts) complete on `item_indexes` as a float matrix; incomplete drafts are left out."""
    by_draft: dict[str, dict[int, float]] = {}
    for row in rows:
        by_draft.setdefault(row["rationale_id"], {})[row["item_index"]] = value(row)
    complete = [d for d, cells in by_draft.items() if all(i in cells for i in item_indexes)]
    matrix = np.array([[by_draft[d][i] for i in item_indexes] for d in complete], dtype=float)
    return dict(rationale_ids=complete, item_indexes=item_indexes,
                matrix=matrix.reshape(len(complete), len(item_indexes)))


def signal_reliability(store: Store, run_id: str, student: str, signal: str = "icl") -> dict:
    """Split-half reliability of one signal's draft scores for one run and student.

    `signal`: 'icl' (the ICL score the pairs rank on by default: balanced accuracy where the stored
    scores have it, else accuracy), 'accuracy', 'balanced_accuracy' or 'influence' (the mean loss
    decrease over the reference items). Items are split in halves stratified by their target
    (N_SPLITS seeded splits); each draft's score on each half; Pearson's r of the halves over drafts,
    averaged over splits, Spearman–Brown corrected. `ci_low`/`ci_high`: percentile bootstrap over
    drafts (N_RESAMPLES); `n_items_for_0_8`: the items that prophecy says reach 0.8 (None when the
    reliability is undefined or ≤ 0). Values are None when there is too little to compute them
    (fewer than 3 drafts or 2 items, or no spread); `score` names the score used."""
    if signal not in SIGNALS:
        raise ArteError(f"unknown signal {signal!r}; choose one of {', '.join(SIGNALS)}.")
    data = (influence_item_matrix if signal == "influence" else icl_item_matrix)(store, run_id, student)
    score = signal
    if signal == "icl":
        score = "balanced_accuracy" if data.get("has_balanced") else "accuracy"
    elif signal == "balanced_accuracy" and not data.get("has_balanced"):
        raise ArteError("this run's ICL scores have no balanced accuracy (not a label task, or scored by an older "
                        "ARTE Studio: `arte rescore`); use signal 'accuracy'.")
    matrix = data["matrix"]
    # Each target's items are split in half, so both halves hold the labels in the same shares (with
    # open answers most targets are single items, which `split_halves` splits at random).
    strata = data["targets"]
    balanced = data["targets"] if score == "balanced_accuracy" else None
    reliability = split_half_reliability(matrix, N_SPLITS, SEED, strata=strata, labels=balanced)
    low, high = split_half_ci(matrix, N_SPLITS, N_RESAMPLES, SEED, strata=strata, labels=balanced)
    n_drafts, n_items = matrix.shape
    return dict(n_drafts=n_drafts, n_items=n_items, reliability=reliability, ci_low=low, ci_high=high,
                n_items_for_0_8=items_needed(reliability, n_items, RELIABILITY_TARGET), score=score)

"""Store reads and writes of the local-data-influence signal, and its comparison with ICL accuracy.

Also each signal's split-half reliability over the preference (or reference) items, per run and
student (`signal_reliability`), the reads and writes of the answer log-probability metric
(`score.metric: answer_logprob`), and how its reliability compares with accuracy's on the same drafts
(`metric_reliability_difference`).

Sign convention: `influence = loss_after - loss_before` (negative = the draft helps the student), so a
draft the influence signal prefers has a LOW influence; comparisons rank by `-influence`.
"""

from __future__ import annotations

import numpy as np

from arte_core.errors import ArteError
from arte_core.stats import (average_ranks, bootstrap_ci, items_needed, permutation_null, spearman, spearman_brown,
                             spearman_ci, split_half_ci, split_half_reliability, split_half_scores, split_halves)
from arte_core.store.core import Store

# Seeded, so the same store always reports the same figures; 200 splits and 1000 resamples keep the
# Monte Carlo error of the reliability and its interval's ends well below their second decimal.
N_SPLITS = 200
N_RESAMPLES = 1000
N_PERMUTATIONS = 2000
SEED = 0
RELIABILITY_TARGET = 0.8
SIGNALS = ("icl", "accuracy", "balanced_accuracy", "answer_logprob", "influence")

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


def student_comparison(store: Store, run_id: str, student: str, other: str) -> dict:
    """Do two students prefer the same drafts? Their ICL scores of the drafts both scored (balanced accuracy
    where both students' scores have it, else accuracy): rows (rationale_id, question, technique, score_a,
    score_b), `spearman` with its Fisher-z CI (n ≥ 4), what chance gives (permutation null), `n`, and
    `score_name`. The paper's transfer question (Table 5) starts here: a teacher aligned to one student can
    only suit another that ranks drafts alike."""
    balanced = _is_label_task(store, run_id, student) and _is_label_task(store, run_id, other)
    column = "balanced_accuracy" if balanced else "accuracy"
    rows = store.rows(
        f"SELECT r.rationale_id, q.input AS question, r.technique, a.{column} AS score_a, b.{column} AS score_b "
        "FROM rationales r JOIN questions q USING (question_id) "
        "JOIN icl_scores a ON a.rationale_id = r.rationale_id AND a.run_id = r.run_id AND a.student = ? "
        "JOIN icl_scores b ON b.rationale_id = r.rationale_id AND b.run_id = r.run_id AND b.student = ? "
        "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
        [student, other, run_id],
    )
    first, second = [r["score_a"] for r in rows], [r["score_b"] for r in rows]
    rho = spearman(first, second, min_points=2)
    low, high = spearman_ci(rho, len(rows))
    return dict(rows=rows, spearman=rho, ci_low=low, ci_high=high, n=len(rows),
                null=permutation_null(first, second, N_PERMUTATIONS, SEED),
                score_name="balanced accuracy" if balanced else "accuracy")


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
    scores have it, else accuracy), 'accuracy', 'balanced_accuracy', 'answer_logprob' (the mean
    log-probability of the targets) or 'influence' (the mean loss decrease over the reference items). Items are split in halves stratified by their target
    (N_SPLITS seeded splits); each draft's score on each half; Pearson's r of the halves over drafts,
    averaged over splits, Spearman–Brown corrected. `ci_low`/`ci_high`: percentile bootstrap over
    drafts (N_RESAMPLES); `n_items_for_0_8`: the items that prophecy says reach 0.8 (None when the
    reliability is undefined or ≤ 0). Values are None when there is too little to compute them
    (fewer than 3 drafts or 2 items, or no spread); `score` names the score used."""
    if signal not in SIGNALS:
        raise ArteError(f"unknown signal {signal!r}; choose one of {', '.join(SIGNALS)}.")
    readers = {"influence": influence_item_matrix, "answer_logprob": logprob_item_matrix}
    data = readers.get(signal, icl_item_matrix)(store, run_id, student)
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


# -- the answer log-probability metric --------------------------------------------------------------


def drafts_missing_answer_logprob(store: Store, run_id: str, student: str) -> set[str]:
    """The student's scored teacher drafts without a mean answer log-probability yet."""
    return {r["rationale_id"] for r in store.rows(
        "SELECT s.rationale_id FROM icl_scores s JOIN rationales r ON r.rationale_id = s.rationale_id "
        "WHERE s.run_id = ? AND s.student = ? AND r.origin = 'draft' AND s.mean_answer_logprob IS NULL",
        [run_id, student])}


def add_answer_logprobs(store: Store, student: str, rationale_id: str, by_item: dict[int, tuple[float, float]]) -> None:
    """One draft's per-item answer log-probabilities (item_index -> (sum over the target's tokens, per
    token)) and its mean over those items, committed together onto its stored answers and score."""
    with store.transaction():
        for item_index, (total, per_token) in by_item.items():
            store.execute("UPDATE icl_items SET answer_logprob = ?, answer_logprob_per_token = ? "
                          "WHERE rationale_id = ? AND student = ? AND item_index = ?",
                          [total, per_token, rationale_id, student, item_index])
        store.execute("UPDATE icl_scores SET mean_answer_logprob = (SELECT avg(answer_logprob) FROM icl_items "
                      "WHERE rationale_id = ? AND student = ?) WHERE rationale_id = ? AND student = ?",
                      [rationale_id, student, rationale_id, student])


def draft_logprob_scores(store: Store, run_id: str, student: str) -> dict[str, dict]:
    """rationale_id -> {`mean`: the draft's mean answer log-probability (None until measured), `items`:
    {item_index: log-probability}} for every draft the student scored (what logprob pairs rank and test)."""
    found: dict[str, dict] = {r["rationale_id"]: dict(mean=r["mean_answer_logprob"], items={}) for r in store.rows(
        "SELECT rationale_id, mean_answer_logprob FROM icl_scores WHERE run_id = ? AND student = ?", [run_id, student])}
    for row in store.rows(
            "SELECT i.rationale_id, i.item_index, i.answer_logprob FROM icl_items i "
            "JOIN icl_scores s USING (rationale_id, student) "
            "WHERE s.run_id = ? AND i.student = ? AND i.answer_logprob IS NOT NULL", [run_id, student]):
        found[row["rationale_id"]]["items"][int(row["item_index"])] = float(row["answer_logprob"])
    return found


def logprob_item_matrix(store: Store, run_id: str, student: str) -> dict:
    """The drafts × preference items table of answer log-probabilities (`icl_items.answer_logprob`), with
    `rationale_ids`, `item_indexes` and `targets` as `icl_item_matrix` gives them; drafts without a value
    on every item are left out."""
    items = store.rows("SELECT item_index, target FROM pref_items WHERE run_id = ? ORDER BY item_index", [run_id])
    rows = store.rows(
        "SELECT i.rationale_id, i.item_index, i.answer_logprob FROM icl_items i "
        "JOIN rationales r ON r.rationale_id = i.rationale_id AND r.run_id = ? AND r.origin = 'draft' "
        "WHERE i.student = ? AND i.answer_logprob IS NOT NULL ORDER BY i.rationale_id, i.item_index",
        [run_id, student])
    return dict(_matrix(rows, [i["item_index"] for i in items], "answer_logprob", lambda r: r["answer_logprob"]),
                targets=[i["target"].strip() for i in items])


def metric_reliability_difference(store: Store, run_id: str, student: str) -> dict:
    """Split-half reliability of answer log-probability minus that of the ICL score (balanced accuracy on
    label tasks, else accuracy) over the same drafts (those with both on every item) and the same seeded
    item splits, with a paired percentile bootstrap interval over drafts (N_RESAMPLES): both
    reliabilities are recomputed on each resample of drafts, so their correlation is accounted for.
    Returns `difference`, `ci_low`, `ci_high` (None where undefined), `n_drafts`, `n_items`, `score`, and
    `copy_spearman` with `copy_ci_low`/`copy_ci_high`: Spearman's rho of the drafts' mean log-probability
    with their label-copy rate (None without copy rates). On a label task a student at chance makes log
    P(target) highest for drafts that leave it undecided between labels, which is reliable but says
    nothing of the question: a clearly negative rho shows it."""
    correct, logprob = icl_item_matrix(store, run_id, student), logprob_item_matrix(store, run_id, student)
    common = [d for d in correct["rationale_ids"] if d in set(logprob["rationale_ids"])]
    score = "balanced_accuracy" if correct["has_balanced"] else "accuracy"
    result = dict(difference=None, ci_low=None, ci_high=None, n_drafts=len(common), n_items=len(correct["targets"]),
                  score=score, **_copy_spearman(store, run_id, student, logprob))
    if len(common) < 3 or len(correct["targets"]) < 2:
        return result
    halves = split_halves(len(correct["targets"]), N_SPLITS, SEED, strata=correct["targets"])

    def halves_of(data: dict, labels) -> tuple[np.ndarray, np.ndarray]:
        position = {d: k for k, d in enumerate(data["rationale_ids"])}
        return split_half_scores(data["matrix"][[position[d] for d in common]], halves, labels)

    first_a, second_a = halves_of(correct, correct["targets"] if score == "balanced_accuracy" else None)
    first_l, second_l = halves_of(logprob, None)

    def difference(rows: np.ndarray) -> float | None:
        a = _corrected_mean_r(first_a[:, rows], second_a[:, rows])
        b = _corrected_mean_r(first_l[:, rows], second_l[:, rows])
        return None if a is None or b is None else b - a

    low, high = bootstrap_ci(difference, len(common), N_RESAMPLES, SEED)
    return dict(result, difference=difference(np.arange(len(common))), ci_low=low, ci_high=high)


def _copy_spearman(store: Store, run_id: str, student: str, logprob: dict) -> dict:
    copies = {r["rationale_id"]: r["label_copy_rate"] for r in store.rows(
        "SELECT rationale_id, label_copy_rate FROM icl_scores WHERE run_id = ? AND student = ? "
        "AND label_copy_rate IS NOT NULL", [run_id, student])}
    rows = [k for k, d in enumerate(logprob["rationale_ids"]) if d in copies]
    rho = spearman(logprob["matrix"][rows].mean(axis=1), [copies[logprob["rationale_ids"][k]] for k in rows])
    low, high = spearman_ci(rho, len(rows))
    return dict(copy_spearman=rho, copy_ci_low=low, copy_ci_high=high)


def _corrected_mean_r(first: np.ndarray, second: np.ndarray) -> float | None:
    """`stats.split_half_reliability`'s rule on precomputed half scores (splits × drafts): Pearson's r per
    split (undefined without spread), their mean, Spearman–Brown corrected and floored at -1."""
    dx, dy = first - first.mean(axis=1, keepdims=True), second - second.mean(axis=1, keepdims=True)
    sxx, syy = (dx * dx).sum(axis=1), (dy * dy).sum(axis=1)
    defined = (sxx > 1e-12) & (syy > 1e-12)
    if not defined.any():
        return None
    r = (dx * dy).sum(axis=1)[defined] / np.sqrt(sxx[defined] * syy[defined])
    corrected = spearman_brown(float(np.clip(r, -1.0, 1.0).mean()))
    return None if corrected is None else max(-1.0, corrected)

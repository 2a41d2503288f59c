"""Store reads and writes of the local-data-influence signal, and its comparison with ICL accuracy.

Sign convention: `influence = loss_after - loss_before` (negative = the draft helps the student), so a
draft the influence signal prefers has a LOW influence; comparisons rank by `-influence`.
"""

from __future__ import annotations

from arte_core.stats import average_ranks, spearman
from arte_core.store.core import Store

_DRAFT_COLUMNS = (
    "r.rationale_id, r.question_id, r.technique, r.prompt, r.text, r.answer, r.matches_target, "
    "r.word_count, q.input AS question, q.target, q.idx AS question_idx"
)


def add_influence_scores(store: Store, rows: list[dict]) -> None:
    """Probe results of several drafts, committed together."""
    if not rows:
        return
    with store.transaction():
        store.insert("influence_scores", rows)


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
    """ICL accuracy vs influence for the drafts that have both, for one student.

    Returns rows (rationale_id, question, technique, word_count, accuracy, influence), `spearman` =
    rank correlation of accuracy with -influence (positive = the signals agree; None with fewer than two
    drafts or when either signal is constant), `n`, and `disagreements`: rows that one signal ranks in its
    top half and the other in its bottom half (a draft tied at the median belongs to neither half).
    """
    rows = store.rows(
        "SELECT r.rationale_id, q.input AS question, r.technique, r.word_count, c.accuracy, s.influence "
        "FROM rationales r JOIN questions q USING (question_id) "
        "JOIN icl_scores c ON c.rationale_id = r.rationale_id AND c.student = ? "
        "JOIN influence_scores s ON s.rationale_id = r.rationale_id AND s.student = ? AND s.run_id = r.run_id "
        "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
        [student, student, run_id],
    )
    accuracies, helpfulness = [r["accuracy"] for r in rows], [-r["influence"] for r in rows]
    middle = (len(rows) + 1) / 2
    disagreements = [row for row, a, i in zip(rows, average_ranks(accuracies), average_ranks(helpfulness))
                     if (a - middle) * (i - middle) < 0]
    return dict(rows=rows, spearman=spearman(accuracies, helpfulness, min_points=2), n=len(rows),
                disagreements=disagreements)


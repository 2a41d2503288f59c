"""What the exports read: pairs' provenance with their decision in force, SFT examples and every draft
with its score. The training pairs themselves come from decisions.training_pairs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from arte_core.store.core import Store
from arte_core.store.decisions import DECISION_CTE


def pair_provenance(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Each pair's origin (run, task, models, signal and style, scores, refs) and its effective decision."""
    return store.df(
        f"WITH {DECISION_CTE} SELECT p.pair_id, p.run_id, u.task, u.teacher, p.student, p.kind, p.signal, p.style, "
        "  p.chosen_ref, p.rejected_ref, p.chosen_score, p.rejected_score, p.margin, e.decision, e.decided_by "
        "FROM pairs p JOIN runs u USING (run_id) LEFT JOIN effective e USING (pair_id) "
        "WHERE p.run_id = ? AND p.student = ? ORDER BY p.pair_id",
        [run_id, student],
    )


def sft_rows(store: Store, run_id: str, dataset: str | None = None, student: str | None = None) -> pd.DataFrame:
    """The run's SFT examples (arms 'original', 'arte', 'best_drafts'; one or all; of one student or of
    every student) with the run's task and teacher and the student they trained."""
    params: list[Any] = [run_id]
    clause = ""
    if dataset:
        clause, params = " AND e.dataset = ?", params + [dataset]
    if student:
        clause, params = clause + " AND e.student = ?", params + [student]
    return store.df(
        "SELECT e.run_id, u.task, u.teacher, e.student, e.dataset, e.idx, e.question_id, e.rationale_id, e.input, "
        "  e.rationale, e.answer FROM sft_examples e JOIN runs u USING (run_id) "
        f"WHERE e.run_id = ?{clause} ORDER BY e.student, e.dataset, e.idx",
        params,
    )


def draft_rows(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Every draft with its text and its score for one student (unscored drafts included)."""
    return store.df(
        "SELECT r.run_id, u.task, u.teacher, ? AS student, r.rationale_id, r.question_id, q.idx AS question_idx, "
        "  q.input AS question, q.target, r.technique, r.prompt, r.text AS rationale, r.answer, r.matches_target, "
        "  r.word_count, q.solver_agrees, s.accuracy, s.n_items "
        "FROM rationales r JOIN questions q USING (question_id) JOIN runs u ON u.run_id = r.run_id "
        "LEFT JOIN icl_scores s ON s.rationale_id = r.rationale_id AND s.student = ? "
        "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
        [student, student, run_id],
    )

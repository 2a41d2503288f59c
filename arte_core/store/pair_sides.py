"""What stands behind each side of a pair, for the reviewer: the side's question with its target and
whether the task's solver agrees, and the student's answer to each preference item with that side as
its demo.

A pair's `chosen_ref` / `rejected_ref` name a rationale (rationale pairs) or a question (question
pairs). A rationale side's answers are that draft's icl_items; a question side's are the share of the
question's scored drafts that got each item right (what its question score averages).
"""

from __future__ import annotations

import pandas as pd

from arte_core.store.core import Store

# One side: the question it stands on (a rationale's own question), the teacher's answer for a rationale.
_SIDE = """
SELECT ?::VARCHAR AS ref, q.input AS question, q.target, q.solver_target, q.solver_agrees,
       r.technique, r.answer AS teacher_answer, r.matches_target
FROM questions q LEFT JOIN rationales r ON r.rationale_id = ?
WHERE q.question_id = coalesce((SELECT question_id FROM rationales WHERE rationale_id = ?), ?)
"""


def pair_side(store: Store, ref: str) -> dict | None:
    """The question behind one side of a pair (None when its question is gone from the store)."""
    found = store.rows(_SIDE, [ref, ref, ref, ref])
    return found[0] if found else None


def side_item_answers(store: Store, run_id: str, student: str, kind: str, ref: str) -> pd.DataFrame:
    """item_index, preference question, its target, answer (a rationale side's; empty for a question
    side), n_correct and n_drafts (1 for a rationale side) of one side, by preference item."""
    if kind == "question":
        answers = ("SELECT i.item_index, NULL::VARCHAR AS answer, sum(i.correct::INTEGER) AS n_correct, "
                   "count(*) AS n_drafts FROM icl_items i JOIN rationales r USING (rationale_id) "
                   "WHERE r.question_id = ? AND i.student = ? GROUP BY i.item_index")
    else:
        answers = ("SELECT i.item_index, i.answer, i.correct::INTEGER AS n_correct, 1 AS n_drafts "
                   "FROM icl_items i WHERE i.rationale_id = ? AND i.student = ?")
    return store.df(f"SELECT a.item_index, p.input AS question, p.target, a.answer, a.n_correct, a.n_drafts "
                    f"FROM ({answers}) a LEFT JOIN pref_items p ON p.run_id = ? AND p.item_index = a.item_index "
                    "ORDER BY a.item_index", [ref, student, run_id])

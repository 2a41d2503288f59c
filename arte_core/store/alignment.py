"""The alignment check's rows (stages/check.py): the held-out check split's exclusions, the student's answers
to check items with a base or aligned teacher draft as demo, and the stored summary of the comparison.

The tables are created on every read-write open; a read-only store opened before they existed has none,
which reads as "no check yet".
"""

from __future__ import annotations

import pandas as pd

from arte_core.store.core import Store

# The two arms the check compares: drafts of the unaligned teacher and of the aligned one.
ARMS = ("base", "arte")
ARM_NAMES = {"base": "base teacher", "arte": "aligned teacher"}


def _has_table(store: Store, table: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                             "AND table_name = ? AND NOT temporary", [table]))


def run_question_inputs(store: Store, run_id: str) -> list[str]:
    """Every question of the run, of any origin, and every candidate preference item: none of them may be
    a check item (a demo must not hold a check item's answer, nor may a pair have been built from one)."""
    return [r["input"] for r in store.rows(
        "SELECT input FROM questions WHERE run_id = ? UNION ALL SELECT input FROM item_candidates WHERE run_id = ?",
        [run_id, run_id])]


def answered_rationale_ids(store: Store, run_id: str, student: str) -> set[str]:
    """The drafts whose check answers are stored for `student` (a draft's answers commit together)."""
    return {r["rationale_id"] for r in store.rows(
        "SELECT DISTINCT rationale_id FROM alignment_scores WHERE run_id = ? AND student = ?", [run_id, student])}


def add_check_answers(store: Store, rows: list[dict]) -> None:
    """One draft's answers to every check item, committed together."""
    with store.transaction():
        store.insert("alignment_scores", rows)


def check_answers(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Every stored check answer of `student`, with the item's target and the draft's own answer."""
    if not _has_table(store, "alignment_scores"):
        return pd.DataFrame(columns=["origin", "rationale_id", "item_index", "target", "answer", "correct",
                                     "parse_mode", "truncated", "demo_answer", "demo_target"])
    return store.df(
        "SELECT a.origin, a.rationale_id, a.item_index, c.target, a.answer, a.correct, a.parse_mode, a.truncated, "
        "  r.answer AS demo_answer, q.target AS demo_target "
        "FROM alignment_scores a JOIN check_items c ON c.run_id = a.run_id AND c.item_index = a.item_index "
        "JOIN rationales r ON r.rationale_id = a.rationale_id JOIN questions q ON q.question_id = r.question_id "
        "WHERE a.run_id = ? AND a.student = ? ORDER BY a.origin, a.rationale_id, a.item_index",
        [run_id, student])


def check_draft_scores(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Per scored draft: its arm (origin), check items answered and accuracy on them."""
    if not _has_table(store, "alignment_scores"):
        return pd.DataFrame(columns=["origin", "rationale_id", "n_items", "accuracy"])
    return store.df(
        "SELECT origin, rationale_id, count(*) AS n_items, avg(correct::DOUBLE) AS accuracy FROM alignment_scores "
        "WHERE run_id = ? AND student = ? GROUP BY origin, rationale_id ORDER BY origin, rationale_id",
        [run_id, student])


def alignment_check(store: Store, run_id: str, student: str) -> dict | None:
    """The check's summary for `student` as the check stage stored it (stage_status info), or None when the
    check has not run for this student."""
    return store.stage_info(run_id, "check", student)


def has_both_arms(store: Store, run_id: str, student: str) -> bool:
    """Whether the student's arms hold rationales of both teachers (base and aligned), so the check can run."""
    return store.scalar("SELECT count(DISTINCT origin) FROM rationales WHERE run_id = ? AND student = ? "
                        "AND origin IN (?, ?)", [run_id, student, *ARMS]) == len(ARMS)

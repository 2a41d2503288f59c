"""Store reads behind the study (arte_core/study/): every evaluated item of a set of runs, for one
student, and the runs a study can be made of.

`eval_items` gains a `student` column when evaluations are stored per student; until a store has it,
every evaluated item belongs to the run's own student, so the reads filter on the student only where
the column exists.
"""

from __future__ import annotations

import pandas as pd

from arte_core.store.core import Store

ITEM_COLUMNS = ["run_id", "variant", "shots", "item_index", "correct", "answer", "parse_mode", "truncated"]


def has_column(store: Store, table: str, column: str) -> bool:
    """Whether the store's own `table` (not a TEMP one) has `column`."""
    return bool(store.scalar(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ? AND column_name = ?", [table, column]))


def study_eval_items(store: Store, run_ids: list[str], student: str | None = None) -> pd.DataFrame:
    """One row per evaluated item of the given runs: run_id, variant, shots, item_index, correct,
    answer (NULL: unparsed), parse_mode and truncated (NULL where an older version did not record it).
    With `student`, only that student's items where the store records students per item (before that
    column, a run's items are its own student's)."""
    if not run_ids:
        return pd.DataFrame(columns=ITEM_COLUMNS)
    marks = ", ".join("?" for _ in run_ids)
    sql = f"SELECT {', '.join(ITEM_COLUMNS)} FROM eval_items WHERE run_id IN ({marks})"
    params: list = list(run_ids)
    if student is not None and has_column(store, "eval_items", "student"):
        sql += " AND student = ?"
        params.append(student)
    frame = store.df(sql + " ORDER BY run_id, variant, shots, item_index", params)
    frame["correct"] = frame["correct"].astype(bool)
    return frame


def evaluated_runs(store: Store) -> list[dict]:
    """Every run with at least one evaluated item: run_id, task, student and config_yaml (its seed is
    in the config), in the order the runs were created."""
    return store.rows(
        "SELECT r.run_id, r.task, r.student, r.config_yaml FROM runs r "
        "WHERE EXISTS (SELECT 1 FROM eval_items i WHERE i.run_id = r.run_id) ORDER BY r.created_at, r.run_id")


def evaluated_students(store: Store) -> dict[str, list[str]]:
    """Per evaluated run, the students with evaluated items in it (the run's own student first, then by
    name); a store without per-student items gives each run its own student."""
    runs = {r["run_id"]: [r["student"]] for r in evaluated_runs(store)}
    if has_column(store, "eval_items", "student"):
        for row in store.rows("SELECT DISTINCT run_id, student FROM eval_items ORDER BY run_id, student"):
            students = runs.get(row["run_id"])
            if students is not None and row["student"] not in students:
                students.append(row["student"])
    return runs

"""Store reads and writes of `arte pilot` (arte_core/pilot.py): the pilot_results table.

One row per student × built-in task × difficulty level × shots × seed × number of items. A cell measured
again replaces its row. A store opened read-only before the table existed simply has no pilot results.
"""

from __future__ import annotations

from arte_core.store.core import Store

PILOT_KEY = ("student", "task", "level", "shots", "seed", "n_items")


def _has_pilot_table(store: Store) -> bool:
    return bool(store.scalar(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'pilot_results'"))


def save_pilot_result(store: Store, row: dict) -> None:
    """Store one measured cell, replacing a row with the same key (PILOT_KEY)."""
    where = " AND ".join(f"{column} = ?" for column in PILOT_KEY)
    with store.transaction():
        store.execute(f"DELETE FROM pilot_results WHERE {where}", [row[column] for column in PILOT_KEY])
        store.insert("pilot_results", [row])


def pilot_result(store: Store, student: str, task: str, level: int, shots: int, seed: int,
                 n_items: int) -> dict | None:
    """The stored cell with this key, or None."""
    if not _has_pilot_table(store):
        return None
    where = " AND ".join(f"{column} = ?" for column in PILOT_KEY)
    rows = store.rows(f"SELECT * FROM pilot_results WHERE {where}", [student, task, level, shots, seed, n_items])
    return rows[0] if rows else None


def pilot_results(store: Store, student: str | None = None, shots: int | None = None) -> list[dict]:
    """Every stored cell (optionally of one student and number of shots), by student, task, level; when a
    cell was measured at several sizes or seeds, each is a row."""
    if not _has_pilot_table(store):
        return []
    clauses, params = [], []
    if student is not None:
        clauses.append("student = ?")
        params.append(student)
    if shots is not None:
        clauses.append("shots = ?")
        params.append(shots)
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    return store.rows(f"SELECT * FROM pilot_results {where}ORDER BY student, shots, task, level, seed, n_items",
                      params)


def pilot_students(store: Store) -> list[str]:
    """Students with at least one pilot result, by name."""
    if not _has_pilot_table(store):
        return []
    return [r["student"] for r in store.rows("SELECT DISTINCT student FROM pilot_results ORDER BY student")]

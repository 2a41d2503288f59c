"""Store reads and writes of the `jobs` table: one row per run launched from the studio."""

from __future__ import annotations

from arte_core.store.core import Store, utcnow


def all_jobs(store: Store) -> list[dict]:
    """Every job, newest first."""
    return store.rows("SELECT * FROM jobs ORDER BY started_at DESC, job_id DESC")


def job(store: Store, job_id: str) -> dict | None:
    found = store.rows("SELECT * FROM jobs WHERE job_id = ?", [job_id])
    return found[0] if found else None


def running_jobs(store: Store) -> list[dict]:
    """Jobs recorded as running (their process may have ended since)."""
    return store.rows("SELECT * FROM jobs WHERE status = 'running'")


def newest_running_job(store: Store) -> dict | None:
    found = store.rows("SELECT * FROM jobs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1")
    return found[0] if found else None


def add_job(store: Store, row: dict) -> None:
    with store.transaction():
        store.insert("jobs", [row])


def finish_job(store: Store, job_id: str, status: str, message: str | None) -> None:
    """Record how a job ended (done, failed or stopped), with its message and the time."""
    store.execute("UPDATE jobs SET status = ?, message = ?, finished_at = ? WHERE job_id = ?",
                  [status, message, utcnow(), job_id])

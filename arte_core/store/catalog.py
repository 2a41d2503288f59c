"""What the store holds, for the studio's pickers and headers: runs, their students and techniques,
and how many preference questions stand behind a score."""

from __future__ import annotations

import weakref

import pandas as pd

from arte_core.store.core import Store


def list_runs(store: Store) -> pd.DataFrame:
    """Every run with its task, models and how far it got."""
    return store.df(
        "SELECT r.run_id, r.task, r.teacher, r.student, r.created_at, "
        "  (SELECT count(*) FROM questions q WHERE q.run_id = r.run_id AND q.origin = 'draft') AS questions, "
        "  (SELECT count(*) FROM rationales x WHERE x.run_id = r.run_id AND x.origin = 'draft') AS rationales, "
        "  (SELECT count(*) FROM icl_scores s WHERE s.run_id = r.run_id) AS scores, "
        "  (SELECT count(*) FROM pairs p WHERE p.run_id = r.run_id) AS pairs "
        "FROM runs r ORDER BY r.created_at, r.run_id"
    )


def runs_with_data(store: Store) -> pd.DataFrame:
    """list_runs without the runs none of whose stages stored anything yet (a launch registers its run
    first; a run that failed or was stopped before its first row would otherwise look like a real one)."""
    runs = list_runs(store)
    stored = {r["run_id"] for r in store.rows(
        "SELECT run_id FROM stage_status UNION SELECT run_id FROM questions UNION SELECT run_id FROM icl_scores "
        "UNION SELECT run_id FROM pairs")}
    return runs[runs["run_id"].isin(stored)].reset_index(drop=True)


def list_students(store: Store, run_id: str) -> list[str]:
    """The run's own student, then the other students with ICL scores in the run."""
    own = store.scalar("SELECT student FROM runs WHERE run_id = ?", [run_id])
    ordered = [own] if own else []
    return ordered + [s for s in scored_students(store, run_id) if s != own]


# Per store: (write_count, run_id) -> its scored students. Every drafts page asks, and the answer
# (a scan of every score row) changes only with a write.
_scored: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scored_students(store: Store, run_id: str) -> list[str]:
    """Students with ICL scores in the run, the run's own student first."""
    known = _scored.setdefault(store, {})
    key = (store.write_count, run_id)
    if key not in known:
        known.clear()
        known[key] = [r["student"] for r in store.rows(
            "SELECT DISTINCT s.student FROM icl_scores s WHERE s.run_id = ? "
            "ORDER BY s.student <> (SELECT student FROM runs WHERE run_id = ?), s.student", [run_id, run_id])]
    return list(known[key])


def students_with_scores(store: Store) -> list[str]:
    """Every student with ICL scores in any run of the store, by name."""
    return [r["student"] for r in store.rows("SELECT DISTINCT student FROM icl_scores ORDER BY student")]


def list_techniques(store: Store, run_id: str, origin: str = "draft") -> list[str]:
    """The reasoning techniques of the run's rationales of one origin ('draft' or 'arte')."""
    return [r["technique"] for r in store.rows(
        "SELECT DISTINCT technique FROM rationales WHERE run_id = ? AND origin = ? ORDER BY technique",
        [run_id, origin])]


def pair_students(store: Store, run_id: str) -> list[str]:
    """Students that have pairs in the run."""
    return [r["student"] for r in store.rows(
        "SELECT DISTINCT student FROM pairs WHERE run_id = ? ORDER BY student", [run_id])]


def n_pref_items(store: Store, run_id: str, student: str) -> int:
    """Preference questions behind each score (from the scores, else the stored split)."""
    n = store.scalar("SELECT max(n_items) FROM icl_scores WHERE run_id = ? AND student = ?", [run_id, student])
    if n:
        return int(n)
    return int(store.scalar("SELECT count(*) FROM pref_items WHERE run_id = ?", [run_id]) or 0)

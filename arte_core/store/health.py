"""Store reads behind the signal-health audit (arte_core/health.py): the preference split's labels,
every per-item answer of the teacher's drafts, their stored scores, the pairs' tests and the DPO log."""

from __future__ import annotations

import json

import pandas as pd

from arte_core.store.core import Store


def preference_targets(store: Store, run_id: str) -> list[str]:
    """The targets of the run's preference items, by item index."""
    return [r["target"] for r in store.rows(
        "SELECT target FROM pref_items WHERE run_id = ? ORDER BY item_index", [run_id])]


def draft_answers(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """One row per teacher draft × preference item the student answered: rationale_id, item_index,
    correct, unparsed (no answer read) and truncated (NULL where an older version scored it)."""
    return store.df(
        "SELECT i.rationale_id, i.item_index, i.correct, i.answer IS NULL AS unparsed, i.truncated "
        "FROM icl_items i JOIN rationales r ON r.rationale_id = i.rationale_id "
        "WHERE r.run_id = ? AND r.origin = 'draft' AND i.student = ? ORDER BY i.rationale_id, i.item_index",
        [run_id, student])


def draft_score_columns(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Each scored teacher draft's stored counts: n_items, n_unparsed, n_truncated, label_copy_rate."""
    return store.df(
        "SELECT s.rationale_id, s.n_items, s.n_unparsed, s.n_truncated, s.label_copy_rate "
        "FROM icl_scores s JOIN rationales r ON r.rationale_id = s.rationale_id "
        "WHERE s.run_id = ? AND s.student = ? AND r.origin = 'draft' ORDER BY s.rationale_id",
        [run_id, student])


def pair_p_values(store: Store, run_id: str, student: str) -> list[float | None]:
    """The stored paired-test p-value of each of the student's pairs (None: not tested, i.e. built by an
    older version, or from influence, which has no per-item test)."""
    return [r["p_value"] for r in store.rows(
        "SELECT p_value FROM pairs WHERE run_id = ? AND student = ? ORDER BY pair_id", [run_id, student])]


def teacher_training_log(store: Store, run_id: str, student: str | None = None) -> tuple[dict | None, list[dict]]:
    """(the metrics of the teacher aligned to the student (None: the run's), or None when none was aligned;
    each logged DPO step's whole log row, in step order)."""
    artifact = store.artifact(run_id, "teacher_adapter", student)
    if artifact is None:
        return None, []
    logs = [json.loads(r["metrics_json"] or "{}") for r in store.train_logs(run_id, "teacher_adapter", student)]
    return json.loads(artifact.get("metrics_json") or "{}"), logs

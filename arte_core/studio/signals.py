"""The Signals tab: ICL accuracy vs local data influence per draft, their rank correlation and the
drafts the two signals disagree on."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from arte_core.store import Store, signals
from arte_core.studio import plots
from arte_core.studio.common import NO_RUN, preview, require, require_run, table_ready


def signals_view(store: Store, run_id: Any, student: Any) -> dict:
    """Compare the two preference signals: scatter, Spearman, the drafts they disagree on most."""
    if not run_id:
        return dict(figure=plots.empty_figure("No run yet."), summary=NO_RUN, disagreements=pd.DataFrame())
    run_id, student = require_run(store, run_id), require(student, "a student")
    comparison = signals.signal_comparison(store, run_id, student)
    rows = pd.DataFrame(comparison.get("rows") or [],
                        columns=["rationale_id", "question", "technique", "word_count", "accuracy", "influence"])
    disagreements = pd.DataFrame(comparison.get("disagreements") or [])
    flagged = set(disagreements["rationale_id"]) if "rationale_id" in disagreements else set()
    rho = comparison.get("spearman")
    if rows.empty:
        summary = (f"No drafts with both signals for **{html.escape(student)}** in this run: run the `influence` "
                   "stage (Runs tab, or `arte influence`) after `score` to compare the two signals.")
    else:
        summary = (f"{comparison.get('n', len(rows))} drafts with both signals · Spearman ρ(accuracy, −influence) = "
                   f"{'undefined' if rho is None else f'{rho:.2f}'} · {len(flagged)} drafts that one signal ranks in "
                   "its top half and the other in its bottom half (listed below).")
    if "question" in disagreements:
        disagreements["question"] = disagreements["question"].map(lambda t: preview(t, 80))
    return dict(figure=plots.signals_figure(rows, flagged), summary=summary, disagreements=table_ready(disagreements))

"""The Signals tab: ICL score vs local data influence per draft, their rank correlation with its CI and
what chance would give, each signal's split-half reliability, and the drafts the signals disagree on."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from arte_core.store import Store, signals
from arte_core.studio import plots
from arte_core.studio.common import NO_RUN, preview, require, require_run, table_ready

DISAGREEMENT_COLUMNS = ["rank_distance", "rationale_id", "question", "technique", "word_count", "accuracy",
                        "icl_score", "influence"]


def _number(value: float | None, digits: int = 2) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def correlation_text(comparison: dict) -> str:
    """'ρ = 0.31 (95% CI −0.05…0.60)', or 'ρ undefined'."""
    rho = comparison.get("spearman")
    if rho is None:
        return "ρ undefined (a signal without spread, or too few drafts)"
    low, high = comparison.get("ci_low"), comparison.get("ci_high")
    ci = f" (95% CI {low:.2f}…{high:.2f})" if low is not None else " (too few drafts for a CI)"
    return f"ρ = {rho:.2f}{ci}"


def chance_text(comparison: dict) -> str:
    null = comparison.get("null")
    if not null:
        return "chance level undefined with fewer than 3 drafts or a constant signal"
    return (f"if the signals were unrelated, 95% of {null['n_permutations']} shuffles would give ρ between "
            f"{null['low']:.2f} and {null['high']:.2f} (permutation p = {null['p']:.3g})")


def reliability_text(name: str, result: dict) -> str:
    """One line on a signal's split-half reliability, its CI and the items that would reach 0.8."""
    if not result["n_drafts"]:
        return (f"{name}: no per-item results stored, so no reliability" + (" (probed before ARTE Studio stored "
                "each reference item's loss)" if name == "influence" else "") + ".")
    rel = result["reliability"]
    if rel is None:
        return (f"{name}: reliability undefined over {result['n_drafts']} drafts × {result['n_items']} items "
                "(the draft scores do not vary).")
    ci = (f" (95% CI {result['ci_low']:.2f}…{result['ci_high']:.2f})" if result["ci_low"] is not None else "")
    needed = result["n_items_for_0_8"]
    advice = ("no number of items would reach 0.8: the halves do not rank the drafts alike" if needed is None
              else f"0.8 needs about {needed} items" + (" (already there)" if needed <= result["n_items"] else ""))
    return (f"{name}: split-half reliability {rel:.2f}{ci} over {result['n_drafts']} drafts × "
            f"{result['n_items']} items; {advice}.")


def ceiling(icl: dict, influence: dict) -> float | None:
    """The highest correlation two signals with these reliabilities can show (attenuation), or None."""
    a, b = icl.get("reliability"), influence.get("reliability")
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return math.sqrt(a * b)


def signals_view(store: Store, run_id: Any, student: Any) -> dict:
    """Compare the two preference signals: scatter, Spearman with CI and chance level, reliabilities,
    and the drafts they disagree on most (largest rank distance first)."""
    if not run_id:
        return dict(figure=plots.empty_figure("No run yet."), summary=NO_RUN, disagreements=pd.DataFrame())
    run_id, student = require_run(store, run_id), require(student, "a student")
    comparison = signals.signal_comparison(store, run_id, student)
    rows = pd.DataFrame(comparison.get("rows") or [], columns=["rationale_id", "question", "technique", "word_count",
                                                               "accuracy", "icl_score", "influence"])
    disagreements = pd.DataFrame(comparison.get("disagreements") or [], columns=DISAGREEMENT_COLUMNS)
    flagged = set(disagreements["rationale_id"])
    score_name = comparison.get("icl_score_name", "accuracy")
    icl = signals.signal_reliability(store, run_id, student, "icl")
    influence = signals.signal_reliability(store, run_id, student, "influence")
    reliability = (f"**Reliability** (Pearson r of draft scores on two label-stratified halves of the items, "
                   f"mean over {signals.N_SPLITS} splits, Spearman–Brown corrected; CI: bootstrap over drafts) · "
                   f"{reliability_text(f'ICL {score_name}', icl)} · {reliability_text('influence', influence)}")
    if rows.empty:
        summary = (f"No drafts with both signals for **{html.escape(student)}** in this run: run the `influence` "
                   f"stage (Runs tab, or `arte influence`) after `score` to compare the two signals.\n\n{reliability}")
    else:
        limit = ceiling(icl, influence)
        summary = (f"{comparison.get('n', len(rows))} drafts with both signals · Spearman "
                   f"ρ(ICL {score_name}, −influence): {correlation_text(comparison)}; {chance_text(comparison)}"
                   + (f"; their reliabilities cap any correlation at about {limit:.2f}" if limit else "")
                   + f".\n\n{reliability}\n\n{len(flagged)} drafts that one signal ranks in its top half and the "
                   "other in its bottom half, listed below by rank distance (places apart), largest first.")
    disagreements["question"] = disagreements["question"].map(lambda t: preview(t, 80))
    figure = plots.signals_figure(rows, flagged, score_name, correlation_text(comparison) if not rows.empty else "")
    return dict(figure=figure, summary=summary, disagreements=table_ready(disagreements))


def students_view(store: Store, run_id: Any, student: Any, other: Any) -> dict:
    """The shown student's draft scores against another student's, with their rank correlation, its CI and
    what chance gives: do the two students prefer the same drafts?"""
    if not run_id:
        return dict(figure=plots.empty_figure("No run yet."), summary=NO_RUN)
    run_id, student = require_run(store, run_id), require(student, "a student")
    if not other or other == student:
        return dict(figure=plots.empty_figure("Pick another student of this run to compare with."),
                    summary="Pick a second student of this run (scored by the `score` stage with `--student`).")
    comparison = signals.student_comparison(store, run_id, student, str(other))
    if not comparison["rows"]:
        return dict(figure=plots.empty_figure("No draft scored by both students."),
                    summary=f"No draft of this run is scored by both **{html.escape(student)}** and "
                            f"**{html.escape(str(other))}**: run the `score` stage for each.")
    name = comparison["score_name"]
    summary = (f"{comparison['n']} drafts scored by both students · Spearman ρ of their ICL {name}: "
               f"{correlation_text(comparison)}; {chance_text(comparison)}.")
    figure = plots.students_figure(pd.DataFrame(comparison["rows"]), student, str(other), name,
                                   correlation_text(comparison))
    return dict(figure=figure, summary=summary)

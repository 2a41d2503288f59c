"""The "Student zone (pilot)" view: a student's `arte pilot` results as a curve over difficulty levels.

One trace per built-in task: accuracy per level with its Wilson 95% interval, the task's baseline (the
majority label's or most common target's share on the same items) as a dashed line of the same colour,
and the ceiling the zone stays below. Levels in the zone are drawn as filled diamonds. The table gives
every cell's numbers with its n.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from arte_core.pilot import PILOT_CEILING, format_table
from arte_core.store import Store
from arte_core.store.pilot import pilot_results, pilot_students
from arte_core.studio.plots import PALETTE, empty_figure

TABLE_COLUMNS = ["task", "level", "n", "accuracy", "95% CI", "baseline", "unparsed", "truncated", "s/item",
                 "in zone"]
NO_PILOT = ("No pilot in this store yet. Measure one: `arte pilot --student STUDENT --db THIS_STORE "
            "[--tasks …] [--levels …] [--n-items 60]`.")


def pilot_choices(store: Store) -> list[str]:
    """Students with pilot results in the store."""
    return pilot_students(store)


def pilot_view(store: Store, student: Any = None, shots: Any = 3) -> dict:
    """summary (Markdown), figure and table of one student's pilot at `shots` shots (the first student with
    results when none is given). Where a cell was measured at several sizes or seeds, the largest n shows."""
    students = pilot_students(store)
    if not students:
        return dict(summary=NO_PILOT, figure=empty_figure("no pilot results"), table=pd.DataFrame(columns=TABLE_COLUMNS))
    student = student if student in students else students[0]
    cells = _largest_per_cell(pilot_results(store, student, int(shots)))
    if not cells:
        message = f"No {int(shots)}-shot pilot of {student} in this store."
        return dict(summary=message, figure=empty_figure(message), table=pd.DataFrame(columns=TABLE_COLUMNS))
    zone_line = format_table(cells).rsplit("\n", 1)[-1]
    summary = (f"**{student}**, {int(shots)}-shot chain of thought, greedy: accuracy per task and difficulty level "
               f"with a Wilson 95% interval over n items. {zone_line}")
    return dict(summary=summary, figure=pilot_figure(cells, student), table=_table(cells))


def _largest_per_cell(rows: list[dict]) -> list[dict]:
    best: dict[tuple, dict] = {}
    for row in rows:
        key = (row["task"], row["level"])
        if key not in best or (row["n_items"], row["created_at"]) > (best[key]["n_items"], best[key]["created_at"]):
            best[key] = row
    return sorted(best.values(), key=lambda r: (r["task"], r["level"]))


def pilot_figure(cells: list[dict], student: str) -> go.Figure:
    """Accuracy with its interval per level, one trace per task, each with its baseline; the ceiling line."""
    fig = go.Figure()
    tasks = sorted({c["task"] for c in cells})
    for index, task in enumerate(tasks):
        colour = PALETTE[index % len(PALETTE)]
        rows = [c for c in cells if c["task"] == task]
        levels = [c["level"] for c in rows]
        accuracy = [c["accuracy"] for c in rows]
        fig.add_trace(go.Scatter(
            x=levels, y=accuracy, mode="lines+markers", name=task, legendgroup=task, line=dict(color=colour),
            marker=dict(size=[12 if c["in_zone"] else 7 for c in rows],
                        symbol=["diamond" if c["in_zone"] else "circle" for c in rows]),
            error_y=dict(type="data", symmetric=False, array=[c["ci_high"] - c["accuracy"] for c in rows],
                         arrayminus=[c["accuracy"] - c["ci_low"] for c in rows]),
            customdata=[[c["n_items"], c["ci_low"], c["ci_high"], c["baseline"], c["baseline_kind"]] for c in rows],
            hovertemplate=(f"{task} level %{{x}}<br>accuracy %{{y:.3f}} [%{{customdata[1]:.2f}}, "
                           "%{customdata[2]:.2f}], n = %{customdata[0]}<br>%{customdata[4]} %{customdata[3]:.3f}"
                           "<extra></extra>")))
        fig.add_trace(go.Scatter(x=levels, y=[c["baseline"] for c in rows], mode="lines", name=f"{task} baseline",
                                 legendgroup=task, showlegend=False, hoverinfo="skip",
                                 line=dict(color=colour, dash="dash", width=1)))
    fig.add_hline(y=PILOT_CEILING, line=dict(color="#999", dash="dot"),
                  annotation_text=f"ceiling {PILOT_CEILING}", annotation_position="top left")
    fig.update_layout(title=f"Student zone of {student}: accuracy by difficulty level (dashed: baseline; "
                            "◆ in the zone)", template="plotly_white", height=460,
                      xaxis=dict(title="difficulty level (what a level counts differs by task)", dtick=1),
                      yaxis=dict(title="accuracy (Wilson 95%)", range=[0, 1.02]))
    return fig


def _table(cells: list[dict]) -> pd.DataFrame:
    rows = []
    for c in cells:
        n = c["n_items"]
        rows.append([c["task"], f"{c['level']}{' (default)' if c['level'] == c['default_level'] else ''}", n,
                     round(c["accuracy"], 3), f"{c['ci_low']:.2f} … {c['ci_high']:.2f}",
                     f"{c['baseline']:.3f} ({c['baseline_kind']})", f"{c['n_unparsed'] / n:.0%}",
                     f"{c['n_truncated'] / n:.0%}", round(c["seconds_per_item"], 2), "yes" if c["in_zone"] else "no"])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)

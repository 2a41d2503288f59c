"""What every tab's handlers share: reading form values (numbers, yes/no, pages, required choices),
text previews, tables ready for JSON, and the run and student pickers.

A handler takes the values a form holds (strings, numbers, None) and returns pandas DataFrames, plotly
Figures, strings or dicts of those; it raises ArteError with a message that says what to fix. No
Gradio in arte_core.studio, so the same functions serve the UI, tests and notebooks.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.store import Store, catalog

PAGE_SIZE = 25
YES_NO_ANY = ("any", "yes", "no")
TEXT_PREVIEW = 160
NO_RUN = ("No run selected: the store has no runs yet. Launch one in the **Runs** tab (or `arte run`), "
          "then press ↻ Reload runs.")


def optional_number(value: Any, name: str) -> float | None:
    """A number typed into a box, or None when the box is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArteError(f"{name} must be a number, got {value!r}; clear the box to drop this filter.") from None


def yes_no(value: Any, name: str) -> bool | None:
    if value in (None, "", "any"):
        return None
    if value in ("yes", True):
        return True
    if value in ("no", False):
        return False
    raise ArteError(f"{name} must be one of {', '.join(YES_NO_ANY)}, got {value!r}.")


def page_number(value: Any) -> int:
    number = optional_number(value, "page")
    return max(1, int(number)) if number is not None else 1


def require(value: Any, what: str) -> str:
    if value in (None, ""):
        raise ArteError(f"choose {what} first.")
    return str(value)


def require_run(store: Store, run_id: Any) -> str:
    """A run id that exists in the store (the error lists the runs that do)."""
    return str(store.run(require(run_id, "a run"))["run_id"])


def preview(text: Any, limit: int = TEXT_PREVIEW) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_name(authenticated: str | None, typed: str | None) -> str:
    """Who a decision is recorded for: the logged-in user, else the name typed in, else 'anonymous'."""
    return (authenticated or "").strip() or (typed or "").strip() or "anonymous"


def table_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN and NA become empty cells (JSON has no NaN), floats are rounded for reading."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(4)
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


# -- runs and students ---------------------------------------------------------------------------

def run_choices(store: Store) -> list[tuple[str, str]]:
    """(label, run_id) for every run: the label names the task, teacher and student."""
    runs = catalog.list_runs(store)
    return [(f"{r.task} · {r.run_id} ({r.teacher} → {r.student})", r.run_id) for r in runs.itertuples()]


def default_run(store: Store) -> str | None:
    """The newest run with pairs, else with scores, else the newest: what a visitor most likely wants to see."""
    runs = catalog.list_runs(store)
    if runs.empty:
        return None
    for candidates in (runs[runs["pairs"] > 0], runs[runs["scores"] > 0], runs):
        if not candidates.empty:
            return str(candidates.iloc[-1]["run_id"])
    return None


def student_choices(store: Store, run_id: str | None) -> list[str]:
    return catalog.list_students(store, run_id) if run_id else []


def technique_choices(store: Store, run_id: str | None) -> list[str]:
    return ["all"] + (catalog.list_techniques(store, run_id) if run_id else [])


def store_summary(store: Store) -> str:
    runs = catalog.list_runs(store)
    if runs.empty:
        return ("The store is empty: launch a run in the **Runs** tab (or `arte run --db …` on the command line), "
                "then press ↻ Reload runs.")
    return f"{len(runs)} run(s) in the store; {int(runs['pairs'].sum())} pairs, {int(runs['scores'].sum())} draft scores."

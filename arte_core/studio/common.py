"""What every tab's handlers share: reading form values (numbers, yes/no, pages, required choices),
text previews, tables ready for JSON, and the run and student pickers.

A handler takes the values a form holds (strings, numbers, None) and returns pandas DataFrames, plotly
Figures, strings or dicts of those; it raises ArteError with a message that says what to fix. No
Gradio in arte_core.studio, so the same functions serve the UI, tests and notebooks.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.store import Store, catalog

PAGE_SIZE = 25
YES_NO_ANY = ("any", "yes", "no")
MISSING = "—"  # what a table cell shows for a value that is not there (never None, nan or an empty cell)
TEXT_PREVIEW = 160
# Far beyond any real table, small enough that its OFFSET fits DuckDB's integers.
MAX_PAGE = 10**9
NO_RUN = ("No run selected: the store has no runs yet. Launch one in the **Runs** tab (or `arte run`), "
          "then press ↻ Reload runs.")


def optional_number(value: Any, name: str, minimum: float | None = None,
                    maximum: float | None = None) -> float | None:
    """A finite number typed into a box, within [minimum, maximum] when given; None when the box is empty."""
    if _empty(value):
        return None
    try:  # True is not a number a person typed; "1e309" and "nan" parse, but are not numbers either
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise ArteError(f"{name} must be a number, got {_shown(value)}; clear the box to drop this filter.")
    _check_range(number, name, minimum, maximum)
    return number


def whole_number(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """A whole number (an id, a count) typed into a box; None when the box is empty.

    A number box sends floats, so 2.0 is 2; but 1.5 is refused, never rounded or truncated to
    another id.
    """
    if _empty(value):
        return None
    number = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
        else _parse_whole(value)
    if number is None:
        raise ArteError(f"{name} must be a whole number, got {_shown(value)}.")
    _check_range(number, name, minimum, maximum)
    return number


def _parse_whole(value: Any) -> int | None:
    """A float or text that is a whole number ("7", "7.0", 7.0) as an int; anything else None."""
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value: Any) -> str:
    """A typed value as an error message quotes it: bounded, since a browser can send anything."""
    return preview(repr(value), 40)


def _check_range(number: float, name: str, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ArteError(f"{name} must be at least {minimum}, got {_shown(number)}.")
    if maximum is not None and number > maximum:
        raise ArteError(f"{name} must be at most {maximum}, got {_shown(number)}.")


def yes_no(value: Any, name: str) -> bool | None:
    if value in (None, "", "any"):
        return None
    if value in ("yes", True):
        return True
    if value in ("no", False):
        return False
    raise ArteError(f"{name} must be one of {', '.join(YES_NO_ANY)}, got {_shown(value)}.")


def page_number(value: Any) -> int:
    """The page a box asks for: empty = 1; below 1 (the previous-page button on page 1) = 1; beyond
    MAX_PAGE = MAX_PAGE, which the views turn into their last page. Not a whole number: refused."""
    number = whole_number(value, "page")
    return 1 if number is None else min(MAX_PAGE, max(1, number))


def require(value: Any, what: str) -> str:
    if value in (None, ""):
        raise ArteError(f"choose {what} first.")
    return str(value)


def require_run(store: Store, run_id: Any) -> str:
    """A run id that exists in the store (the error lists the runs that do)."""
    return str(store.run(require(run_id, "a run"))["run_id"])


def require_student(store: Store, run_id: str, student: Any, what: str = "drafts") -> str:
    """A student the run has data for: its own student or one with scores ('drafts'), or one with 'pairs'.
    A name that matches nothing is refused (naming those that exist), never shown as empty results."""
    student = require(student, "a student")
    if what == "pairs":
        known, label = catalog.pair_students(store, run_id), "pairs"
    else:
        known, label = catalog.list_students(store, run_id), "draft scores"
    if student not in known:
        have = f"students with {label}: {', '.join(known)}" if known else f"this run has no {label} yet"
        raise ArteError(f"no {label} for student {_shown(student)} in run {run_id}; {have}.")
    return student


def preview(text: Any, limit: int = TEXT_PREVIEW) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_name(authenticated: str | None, typed: str | None) -> str:
    """Who a decision is recorded for: the logged-in user, else the name typed in, else 'anonymous'."""
    return (authenticated or "").strip() or (typed or "").strip() or "anonymous"


def table_ready(frame: pd.DataFrame, missing: str | None = None) -> pd.DataFrame:
    """NaN and NA become `missing` (default an empty cell: JSON has no NaN), floats are rounded for reading."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(4)
        out[column] = out[column].astype(object).where(out[column].notna(), missing)
    return out


def yes_no_cell(value: Any) -> str | None:
    """The one boolean style of the studio's tables: yes / no, None (shown as MISSING) when unknown."""
    return None if value is None or pd.isna(value) else ("yes" if value else "no")


# -- runs and students ---------------------------------------------------------------------------

def run_choices(store: Store) -> list[tuple[str, str]]:
    """(label, run_id) for every run that stored something: the label names the task, teacher and student."""
    runs = catalog.runs_with_data(store)
    return [(run_label(r.run_id, r.task, r.teacher, r.student), r.run_id) for r in runs.itertuples()]


def run_label(run_id: str, task: str, teacher: str, student: str) -> str:
    """A run as a picker shows it, short enough for a phone: the task only when the id does not start
    with it, and one model name when teacher and student are one model."""
    name = run_id if run_id.startswith(task) else f"{task} · {run_id}"
    models = f"{teacher} as both" if teacher == student else f"{teacher} → {student}"
    return f"{name} ({models})"


def default_run(store: Store) -> str | None:
    """The newest run with pairs, else with scores, else the newest with data: what a visitor most likely wants."""
    runs = catalog.runs_with_data(store)
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
    runs = catalog.runs_with_data(store)  # the runs the pickers list
    if runs.empty:
        return ("The store is empty: launch a run in the **Runs** tab (or `arte run --db …` on the command line), "
                "then press ↻ Reload runs.")
    return f"{len(runs)} run(s) in the store; {int(runs['pairs'].sum())} pairs, {int(runs['scores'].sum())} draft scores."

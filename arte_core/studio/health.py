"""The Health tab's handlers: the signal-health lines of a run × student (arte_core/health.py) as a
table and a summary, the one-line pointer the Drafts and Pairs tabs show above their tables, and the
lines as JSON for exports.

The lines are computed once per run × student × state of the store (its write count), so the two tabs'
pointers and the Health tab share one computation until something is written.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.health import TITLES, HealthLine, signal_health, summary_counts
from arte_core.store import Store
from arte_core.studio.common import NO_RUN, require, require_run

TABLE_COLUMNS = ["status", "check", "value", "95% CI", "n", "what it means / what to change"]
STATUS_SHOWN = {"ok": "✅ ok", "warn": "⚠️ warn", "bad": "❌ bad", "n/a": "— n/a"}
# The lines that bear on what each tab shows: the Drafts tab's scores, the Pairs tab's pairs.
TAB_LINES = {
    "drafts": ("label_balance", "above_chance", "label_copy", "unparsed", "truncated", "reliability"),
    "pairs": ("label_copy", "reliability", "significant_pairs", "signal_agreement", "dpo_reward_accuracy",
              "dpo_reward_margin"),
}
_CACHE_SIZE = 8
_cache: dict[tuple, list[HealthLine]] = {}


def health_lines(store: Store, run_id: str, student: str) -> list[HealthLine]:
    """`signal_health` of the run × student, reused while the store is unchanged."""
    key = (id(store), store.path, store.write_count, run_id, student)
    if key not in _cache:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = signal_health(store, run_id, student)
    return _cache[key]


def health_view(store: Store, run_id: Any, student: Any) -> dict:
    """The Health tab: a summary line and one table row per check."""
    if not run_id:
        return dict(summary=NO_RUN, table=pd.DataFrame(columns=TABLE_COLUMNS))
    run_id, student = require_run(store, run_id), require(student, "a student")
    lines = health_lines(store, run_id, student)
    counts = summary_counts(lines)
    summary = (f"Signal health of **{html.escape(student)}**'s preferences in run `{html.escape(run_id)}`: "
               + " · ".join(f"{counts[s]} {s}" for s in ("bad", "warn", "ok", "n/a") if counts[s])
               + ". Each line: its number with a 95% interval where one applies, over n (answers, drafts or "
                 "pairs, as its text says).")
    return dict(summary=summary, table=pd.DataFrame([_row(line) for line in lines], columns=TABLE_COLUMNS))


def _row(line: HealthLine) -> list:
    ci = "" if line.ci_low is None or line.ci_high is None else f"{line.ci_low:.2f} … {line.ci_high:.2f}"
    value = "" if line.value is None else f"{line.value:.3g}"
    return [STATUS_SHOWN[line.status], TITLES[line.key], value, ci, "" if line.n is None else line.n, line.message]


def health_pointer(store: Store, run_id: Any, student: Any, tab: str) -> str:
    """One Markdown line for the Drafts or Pairs tab: the bad and warn lines that concern it, or that
    they are fine; empty when there is nothing to audit yet (no run, no student, no scores)."""
    if not run_id or not student:
        return ""
    try:
        lines = health_lines(store, require_run(store, run_id), str(student))
    except ArteError:
        return ""
    concerned = [line for line in lines if line.key in TAB_LINES[tab]]
    parts = []
    for status, word in (("bad", "bad"), ("warn", "to watch")):
        titles = [TITLES[line.key] for line in concerned if line.status == status]
        if titles:
            parts.append(f"{len(titles)} {word} ({', '.join(titles)})")
    if not parts:
        return f"Signal health: the {len(concerned)} lines about this tab are ok or not measured yet — see the **Health** tab."
    return f"**Signal health:** {'; '.join(parts)} — see the **Health** tab."


def health_record(store: Store, run_id: str, student: str) -> dict:
    """The lines as an export writes them (health.json)."""
    return dict(run_id=run_id, student=student,
                lines=[dict(title=TITLES[line.key], **line.to_dict()) for line in health_lines(store, run_id, student)])

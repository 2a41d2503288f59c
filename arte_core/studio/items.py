"""The Items view's handler: each preference item (and each candidate an `irt` selection left out) with its
2PL difficulty and discrimination, the student's share correct with its n and 95% interval, and a flag
for items every draft gets right or every draft gets wrong (they cannot tell drafts apart)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import yaml

from arte_core.stats import wilson_interval
from arte_core.store import Store
from arte_core.store import items as item_store
from arte_core.studio.common import NO_RUN, TEXT_PREVIEW, require, require_run

TABLE_COLUMNS = ["item", "selected", "question", "target", "difficulty", "discrimination", "information",
                 "share correct", "95% CI", "n", "flag"]


def items_view(store: Store, run_id: Any, student: Any) -> dict:
    """A summary line (how the items were chosen) and one row per item. Share correct is over every
    scored draft for a preference item, and over the pilot drafts for a candidate left out."""
    if not run_id:
        return dict(summary=NO_RUN, table=pd.DataFrame(columns=TABLE_COLUMNS))
    run_id, student = require_run(store, run_id), require(student, "a student")
    rows = item_store.item_statistics(store, run_id, student)
    table = pd.DataFrame([_row(r) for r in rows], columns=TABLE_COLUMNS)
    return dict(summary=_summary(store, run_id, student, rows), table=table)


def _row(item: dict) -> list:
    n, k = (item["n_drafts"], item["n_correct"]) if item["selected"] else (item["n_pilot"], item["n_pilot_correct"])
    low, high = wilson_interval(k, n)
    flag = "" if not n else "every draft right" if k == n else "every draft wrong" if k == 0 else ""
    question = item["input"] if len(item["input"]) <= TEXT_PREVIEW else item["input"][:TEXT_PREVIEW] + "…"
    return [item["item_index"], "yes" if item["selected"] else "no", question, item["target"],
            _number(item["difficulty"]), _number(item["discrimination"]), _number(item["information"]),
            _number(k / n if n else None), "" if not n else f"{low:.2f} … {high:.2f}", n, flag]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _summary(store: Store, run_id: str, student: str, rows: list[dict]) -> str:
    selection = (yaml.safe_load(store.run(run_id)["config_yaml"]).get("score") or {}).get("selection", "balanced")
    n_flagged = sum(_row(r)[-1] != "" for r in rows if r["selected"])
    n_selected = sum(r["selected"] for r in rows)
    head = (f"{n_selected} preference items; {n_flagged} of them every scored draft of **{student}** gets right "
            "or every one gets wrong (they cannot separate drafts).")
    fitted = [r for r in rows if r["fit"]]
    if selection != "irt":
        return (f"{head} Chosen by the '{selection}' selection: no IRT fit (difficulty and discrimination are "
                "fitted only when score.selection is 'irt').")
    if not fitted:
        return (f"{head} The 'irt' selection is not made yet: the score stage fits it after its pilot; until then "
                "the preference items are the whole candidate pool.")
    fit = fitted[0]
    n_pilot = max(r["n_pilot"] for r in rows)
    return (f"{head} Chosen by the 'irt' selection: the {n_selected} of {len(fitted)} candidates with the most "
            f"information over the abilities of {n_pilot} pilot drafts of **{fit['fit_student']}**; fit: "
            f"{fit['fit']} (difficulty on the drafts' ability scale, N(0, 1)). Share correct: over every scored "
            f"draft for a kept item, over the {n_pilot} pilot drafts for a candidate left out; n beside it.")

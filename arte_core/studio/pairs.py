"""The Pairs tab: the pairs table (open or blind), one pair's two sides, decisions and their undo,
the audit trail, and how often people agree with the student proxy."""

from __future__ import annotations

import hashlib
import html
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.stats import cohen_kappa
from arte_core.store import Store, catalog, decisions
from arte_core.studio.common import (NO_RUN, PAGE_SIZE, optional_number, page_number, preview, require, require_run,
                                     table_ready, whole_number)

PAIR_SORT_CHOICES = tuple(decisions.PAIR_SORTS)
PAIR_KINDS = ("all", "question", "rationale")
DECISION_STATES = decisions.DECISION_STATES
DECISION_ACTIONS = decisions.DECISION_ACTIONS
DEFAULT_CONTESTED_MARGIN = 0.1


def pair_filter(kind: Any = "all", contested: Any = False, max_margin: Any = DEFAULT_CONTESTED_MARGIN,
                state: Any = "all", search: Any = None, sort: Any = "margin", direction: Any = "asc",
                page: Any = 1) -> decisions.PairFilter:
    """A PairFilter from form values; 'contested' keeps the pairs whose margin is at most `max_margin`."""
    margin = optional_number(max_margin, "contested margin", minimum=0) if contested else None
    if contested and margin is None:
        raise ArteError("'contested only' needs a margin: type the largest margin that counts as contested.")
    return decisions.PairFilter(kind=None if kind in (None, "", "all") else str(kind), max_margin=margin,
                        state=str(state or "all"), search=str(search) if search else None, sort=str(sort or "margin"),
                        direction=str(direction or "asc"), page=page_number(page), page_size=PAGE_SIZE)


def presentation_swapped(pair_id: str) -> bool:
    """Whether blind mode shows this pair's rejected text on the left: fixed per pair, like a seeded coin."""
    return int(hashlib.sha256(pair_id.encode()).hexdigest(), 16) % 2 == 1


def pairs_view(store: Store, run_id: Any, student: Any, flt: decisions.PairFilter, blind: bool = False) -> dict:
    """One page of pairs (scores and sides hidden in blind mode) with counts and agreement numbers."""
    if not run_id:
        return dict(table=pd.DataFrame(), page=1, pages=1, total=0, info=NO_RUN, agreement="")
    run_id, student = require_run(store, run_id), require(student, "a student")
    result = decisions.pairs_page(store, run_id, student, flt)
    if flt.page > result["pages"]:
        flt.page = result["pages"]
        result = decisions.pairs_page(store, run_id, student, flt)
    return dict(table=table_ready(_pair_columns(result["rows"], blind)), page=result["page"], pages=result["pages"],
                total=result["total"], info=_pairs_info(store, run_id, student, result, flt.page_size),
                agreement=agreement_markdown(agreement(store, run_id, student)))


def _pair_columns(rows: pd.DataFrame, blind: bool) -> pd.DataFrame:
    """Numbers and the decision first (they fit), then text previews; the id last so a row can be opened."""
    shown = pd.DataFrame({"kind": rows["kind"], "margin": rows["margin"]})
    if not blind:
        shown["chosen score"] = rows["chosen_score"]
        shown["rejected score"] = rows["rejected_score"]
    shown["decision"] = rows["decision"].fillna("—")
    shown["by"] = rows["decided_by"]
    shown["notes"] = rows["n_notes"]
    if not blind:
        shown["chosen"] = rows["chosen"].map(lambda t: preview(t, 60))
        shown["rejected"] = rows["rejected"].map(lambda t: preview(t, 60))
    shown["prompt"] = rows["prompt"].map(lambda t: preview(t, 50))
    shown["pair_id"] = rows["pair_id"]
    return shown


def _pairs_info(store: Store, run_id: str, student: str, result: dict, page_size: int) -> str:
    total, page = result["total"], result["page"]
    if total == 0:
        others = [s for s in catalog.pair_students(store, run_id) if s != student]
        hint = f" Pairs exist for: {', '.join(others)}." if others else ""
        return f"No pairs match for student **{html.escape(student)}**.{hint}"
    first, last = (page - 1) * page_size + 1, min(total, page * page_size)
    return f"Pairs {first}–{last} of {total} · page {page} of {result['pages']}"


def pair_panel(store: Store, pair_id: Any, blind: bool = False) -> dict:
    """The two sides of a pair, their labels, the decision choices and the latest decision id seen.

    In blind mode the sides are shown as A (left) and B (right) in a per-pair seeded order with no
    scores, until the pair has a decision; then the real sides are revealed.
    """
    p = decisions.pair(store, require(pair_id, "a pair (click a row of the table)"))
    revealed = not blind or p["decision"] is not None
    swapped = blind and presentation_swapped(p["pair_id"])
    left, right = (p["rejected"], p["chosen"]) if swapped else (p["chosen"], p["rejected"])
    if revealed:
        labels = _revealed_labels(p, swapped)
    else:
        labels = ("A (left)", "B (right)")
    return dict(pair_id=p["pair_id"], prompt=p["prompt"], left=left, right=right, left_label=labels[0],
                right_label=labels[1], header=_pair_header(p, revealed, blind), expected_last=int(p["last_decision_id"]),
                choices=action_choices(blind and not revealed, swapped), revealed=revealed)


def _revealed_labels(p: dict, swapped: bool) -> tuple[str, str]:
    chosen = f"student's CHOSEN · score {p['chosen_score']:.3f}"
    rejected = f"student's REJECTED · score {p['rejected_score']:.3f}"
    return (rejected, chosen) if swapped else (chosen, rejected)


def _pair_header(p: dict, revealed: bool, blind: bool) -> str:
    state = f"decision in force: **{p['decision']}** by {html.escape(str(p['decided_by']))}" if p["decision"] \
        else "no decision yet"
    if not revealed:
        return (f"**{p['kind']} pair**, blind: which side is the better training example? "
                f"Sides and scores are revealed after your decision. · {state}")
    sides = " (blind order: the sides are as they were shown)" if blind else ""
    return (f"**{p['kind']} pair** · margin {p['margin']:.3f} · signal {html.escape(p['signal'])}, {html.escape(str(p.get('style') or 'arte'))} style{sides} · {state} · "
            f"{p['n_notes']} note(s)")


def action_choices(blind_unrevealed: bool, swapped: bool) -> list[tuple[str, str]]:
    """(label, action) pairs for the decision radio. Blind: 'A/B is better' mapped onto accept/swap."""
    if blind_unrevealed:
        a_action, b_action = ("swap", "accept") if swapped else ("accept", "swap")
        return [("A (left) is better", a_action), ("B (right) is better", b_action),
                ("Exclude from training", "exclude"), ("Note only", "note")]
    return [("Accept: chosen is better", "accept"), ("Swap: rejected is better", "swap"),
            ("Exclude from training", "exclude"), ("Note only", "note")]


def decide(store: Store, pair_id: Any, action: Any, who: str, why: Any, expected_last: Any = None) -> dict:
    """Record one decision; the message warns when someone else decided the pair since it was opened.

    `expected_last` is the latest decision id the panel showed: 0 = no decision yet, empty = no check.
    A value that is not 0 or a decision of this pair is refused before anything is stored.
    """
    pair_id = require(pair_id, "a pair (click a row of the table)")
    action = require(action, "a decision (accept, swap, exclude or note)")
    try:
        expected = whole_number(expected_last, "the latest decision id you saw", minimum=0)
    except ArteError as exc:
        raise ArteError(f"{exc} 0 means no decision yet; reopen the pair and decide again. Nothing was recorded.") \
            from None
    result = decisions.add_decision(store, pair_id, action, who, str(why or ""), expected)
    decision = result["decision"]
    message = f"Recorded decision {decision['decision_id']}: **{action}** on {pair_id} by {html.escape(decision['who'])}."
    warning = None
    if result["conflict"]:
        prev = result["previous"]
        warning = (f"{html.escape(str(prev['who']))} recorded '{prev['action']}' (decision {prev['decision_id']}) on this pair after you "
                   f"opened it. Both decisions are kept in the trail; yours is the latest and wins. Check the trail.")
    return dict(decision=decision, conflict=result["conflict"], message=message, warning=warning)


def decide_bulk(store: Store, run_id: Any, student: Any, flt: decisions.PairFilter, action: Any, who: str, why: Any) -> dict:
    """The same decision on every pair the filter matches (all pages)."""
    run_id, student = require_run(store, run_id), require(student, "a student")
    action = require(action, "a bulk action")
    ids = decisions.matching_pair_ids(store, run_id, student, flt)
    recorded = decisions.add_decisions(store, ids, action, who, str(why or ""))
    return dict(decisions=recorded, message=f"Recorded **{action}** on {len(recorded)} pair(s) by {html.escape(who)}.")


def undo_decision(store: Store, decision_id: Any, who: str, why: Any = "") -> dict:
    """Undo one decision, named by its whole id from the trail (1.5 is refused, never rounded to another id)."""
    number = whole_number(decision_id, "the decision id to undo", minimum=1)
    if number is None:
        raise ArteError("type the id of the decision to undo (see the trail).")
    row = decisions.undo(store, number, who, str(why or ""))
    return dict(decision=row, message=f"Decision {number} undone (undo recorded as {row['decision_id']}).")


def trail_view(store: Store, pair_id: Any, run_id: Any, whole_run: bool = False) -> pd.DataFrame:
    """The audit trail of one pair, or of the whole run."""
    if whole_run:
        trail = decisions.decision_trail(store, run_id=require_run(store, run_id))
    else:  # no pair selected: an empty table that still has the right columns
        trail = decisions.decision_trail(store, pair_id=str(pair_id) if pair_id else "\0none")
    return table_ready(_trail_columns(trail))


def _trail_columns(trail: pd.DataFrame) -> pd.DataFrame:
    shown = trail.rename(columns={"undone_by": "undone by", "decided_at": "when (UTC)"})
    shown["when (UTC)"] = pd.to_datetime(shown["when (UTC)"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    return shown


def latest_undoable(store: Store, pair_id: Any) -> int | None:
    """The newest decision of a pair that can still be undone (what the undo box offers)."""
    if not pair_id:
        return None
    trail = decisions.decision_trail(store, pair_id=str(pair_id))
    live = trail[(trail["action"] != "undo") & trail["undone_by"].isna()]
    return int(live.iloc[0]["decision_id"]) if not live.empty else None


# -- agreement between people and the student proxy ----------------------------------------------------

def agreement(store: Store, run_id: str, student: str | None = None) -> dict:
    """How often people agree with the student's preference on the pairs they decided.

    accept = the person agrees with the proxy, swap = disagrees; excluded pairs count apart. Kappa
    treats the sides of the seeded blind presentation as labels (the proxy picks a side, the person
    picks a side), so chance agreement is about one half and kappa is defined whenever both raters
    use both sides.
    """
    decided = decisions.decided_pairs(store, run_id, student)
    total = decisions.pair_count(store, run_id, student)
    judged = decided[decided["decision"].isin(["accept", "swap"])]
    out = dict(n_pairs=total, n_decided=len(decided), n_accept=int((decided["decision"] == "accept").sum()),
               n_swap=int((decided["decision"] == "swap").sum()), n_exclude=int((decided["decision"] == "exclude").sum()))
    out["agreement"] = out["n_accept"] / len(judged) if len(judged) else None
    proxy = ["right" if presentation_swapped(pid) else "left" for pid in judged["pair_id"]]
    human = [side if d == "accept" else ("left" if side == "right" else "right")
             for side, d in zip(proxy, judged["decision"])]
    out["kappa"] = cohen_kappa(proxy, human)
    out["by_kind"] = {kind: (float((part["decision"] == "accept").mean()), len(part))
                      for kind, part in judged.groupby("kind")}
    return out


def agreement_markdown(stats: dict) -> str:
    if not stats["n_decided"]:
        return f"No decisions yet on the {stats['n_pairs']} pairs: agreement with the student proxy is not measured."
    share = "—" if stats["agreement"] is None else f"{stats['agreement']:.0%}"
    kappa = "undefined" if stats["kappa"] is None else f"{stats['kappa']:.2f}"
    kinds = "; ".join(f"{k} {v:.0%} of {n}" for k, (v, n) in sorted(stats["by_kind"].items()))
    return (f"**Agreement with the student proxy:** {share} of judged pairs accepted "
            f"({stats['n_accept']} accepted, {stats['n_swap']} swapped, {stats['n_exclude']} excluded; "
            f"{stats['n_decided']} of {stats['n_pairs']} pairs decided) · Cohen's κ {kappa}"
            + (f" · by kind: {kinds}" if kinds else ""))

"""The Pairs tab: the pairs table (open or blind), one pair's two sides, decisions and their undo,
the audit trail, and how often people agree with the student proxy."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.stats import binomial_sd, cohen_kappa
from arte_core.store import Store, catalog, decisions
from arte_core.studio.common import (MISSING, NO_RUN, PAGE_SIZE, optional_number, page_number, preview, require,
                                     require_run, table_ready, whole_number, yes_no_cell)
# The panel of one pair lives in pair_panel; its names stay importable from here, where callers found them.
from arte_core.studio.pair_panel import (DEFAULT_NOISE_LEVEL, TEST_NAMES, action_choices, discordant_text,  # noqa: F401
                                         evidence, pair_panel, presentation_swapped, rendered_side, test_line)

PAIR_SORT_CHOICES = tuple(decisions.PAIR_SORTS)
PAIR_KINDS = ("all", "question", "rationale")
DECISION_STATES = decisions.DECISION_STATES
DECISION_ACTIONS = decisions.DECISION_ACTIONS
EVIDENCE_STATES = decisions.EVIDENCE_STATES
REVEALING_STATES = ("accept", "swap", "exclude")  # decision states a blind review may not filter on


class ContestedAtNoise(decisions.PairFilter):
    """A PairFilter whose contested margin is still to be set from the run's noise level."""


def pair_filter(kind: Any = "all", contested: Any = False, max_margin: Any = None,
                state: Any = "all", search: Any = None, sort: Any = "margin", direction: Any = "asc",
                page: Any = 1, evidence: Any = "all", noise_level: Any = None) -> decisions.PairFilter:
    """A PairFilter from form values. 'contested' keeps the pairs whose margin is at most `max_margin`,
    by default (empty) the run's noise level (`contested_margin`); `evidence` keeps the significant,
    within-noise or untested pairs at p-value level `noise_level` (default DEFAULT_NOISE_LEVEL)."""
    margin = optional_number(max_margin, "contested margin", minimum=0) if contested else None
    level = optional_number(noise_level, "noise level (p-value)", minimum=0, maximum=1)
    values = dict(kind=None if kind in (None, "", "all") else str(kind), max_margin=margin,
                  evidence=str(evidence or "all"), max_p=DEFAULT_NOISE_LEVEL if level is None else level,
                  state=str(state or "all"), search=str(search) if search else None, sort=str(sort or "margin"),
                  direction=str(direction or "asc"), page=page_number(page), page_size=PAGE_SIZE)
    return ContestedAtNoise(**values) if contested and margin is None else decisions.PairFilter(**values)


def contested_margin(store: Store, run_id: str, student: str) -> tuple[float, int]:
    """(margin, n_pref): the default contested margin, one binomial sd of a draft's accuracy on the
    run's n_pref preference items at p = 1/2 (its largest): a smaller margin is within one draft's noise."""
    n_pref = catalog.n_pref_items(store, run_id, student)
    return (binomial_sd(0.5, n_pref) if n_pref else 0.0), n_pref


def _resolved(store: Store, run_id: str, student: str, flt: decisions.PairFilter) -> tuple[decisions.PairFilter, str]:
    """The filter with a contested margin at the noise level filled in, and a note saying what it is."""
    if not isinstance(flt, ContestedAtNoise):
        return flt, ""
    margin, n_pref = contested_margin(store, run_id, student)
    flt.max_margin = margin
    return flt, (f" · contested: margin ≤ {margin:.3f}, one binomial sd of a draft's accuracy at n_pref = {n_pref}"
                 if n_pref else " · contested: no preference items, so no noise level: margin ≤ 0")


def pairs_view(store: Store, run_id: Any, student: Any, flt: decisions.PairFilter, blind: bool = False) -> dict:
    """One page of pairs (scores and sides hidden in blind mode) with counts and agreement numbers."""
    if not run_id:
        return dict(table=pd.DataFrame(), page=1, pages=1, total=0, info=NO_RUN, agreement="")
    run_id, student = require_run(store, run_id), require(student, "a student")
    if blind and flt.state in REVEALING_STATES:
        # Listing the pairs others accepted or swapped would tell a blind reviewer their decisions.
        raise ArteError(f"blind review hides decisions: the decision state '{flt.state}' would show them. Choose "
                        "'all', 'undecided' or 'decided', or leave blind review.")
    flt, note = _resolved(store, run_id, student, flt)
    result = decisions.pairs_page(store, run_id, student, flt)
    if flt.page > result["pages"]:
        flt.page = result["pages"]
        result = decisions.pairs_page(store, run_id, student, flt)
    info = _pairs_info(store, run_id, student, result, flt.page_size)
    if result["total"]:
        info += note + " · " + _evidence_note(store, run_id, student, flt.max_p)
    return dict(table=table_ready(_pair_columns(result["rows"], blind, flt.max_p), MISSING), page=result["page"],
                pages=result["pages"], total=result["total"], info=info,
                agreement=agreement_markdown(agreement(store, run_id, student)))


def _evidence_note(store: Store, run_id: str, student: str, level: float) -> str:
    counts = decisions.evidence_counts(store, run_id, student, level)
    return (f"paired test at p ≤ {level:g}: {counts['significant']} significant, {counts['within noise']} within noise, "
            f"{counts['not tested']} not tested")


def _pair_columns(rows: pd.DataFrame, blind: bool, level: float) -> pd.DataFrame:
    """Numbers and the decision first (they fit), then text previews (questions rendered); the id last so a
    row can be opened. Blind mode hides what would tell a reviewer which side the student or other people
    preferred (margin, scores, sides, decisions, reviewers, notes), and says only whether a pair is decided;
    the p-value and evidence say nothing about which side is which, so it keeps them."""
    records = rows.to_dict("records")
    shown = pd.DataFrame({"kind": rows["kind"]})
    if not blind:
        shown["margin"] = rows["margin"]
    shown["evidence"] = [evidence(r, level) for r in records]
    shown["p"] = [(MISSING if r["p_value"] is None or pd.isna(r["p_value"]) else f"{r['p_value']:.3g}") for r in records]
    if blind:
        shown["decided"] = rows["decision"].notna().map(yes_no_cell)
    else:
        shown["discordant (chosen vs rejected)"] = [discordant_text(r) for r in records]
        shown["chosen score"] = rows["chosen_score"]
        shown["rejected score"] = rows["rejected_score"]
        shown["decision"] = rows["decision"]
        shown["by"] = rows["decided_by"]
        shown["notes"] = rows["n_notes"]
        shown["chosen"] = rows["chosen"].map(lambda t: side_preview(t, 60))
        shown["rejected"] = rows["rejected"].map(lambda t: side_preview(t, 60))
    shown["prompt"] = rows["prompt"].map(lambda t: preview(t, 50))
    shown["pair_id"] = rows["pair_id"]
    return shown


def side_preview(text: Any, limit: int) -> str:
    """One line of a side for a table cell: a question block as 'question → target T', never its markup."""
    return preview(rendered_side(text).replace("\n\nTarget: ", " → target "), limit)


def _pairs_info(store: Store, run_id: str, student: str, result: dict, page_size: int) -> str:
    total, page = result["total"], result["page"]
    if total == 0:
        others = [s for s in catalog.pair_students(store, run_id) if s != student]
        hint = f" Pairs exist for: {', '.join(others)}." if others else ""
        return f"No pairs match for student **{html.escape(student)}**.{hint}"
    first, last = (page - 1) * page_size + 1, min(total, page * page_size)
    return f"Pairs {first}–{last} of {total} · page {page} of {result['pages']}"


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
    """The same decision on every pair the filter matches (all pages), at once: for scripts. The studio
    asks first (bulk_preview) and then decides the pairs it showed the count of (decide_pairs)."""
    return decide_pairs(store, bulk_preview(store, run_id, student, flt, action)["pair_ids"], action, who, why)


def bulk_preview(store: Store, run_id: Any, student: Any, flt: decisions.PairFilter, action: Any) -> dict:
    """What a bulk decision would do, before anything is recorded: the matching pair ids (all pages) and a
    confirmation question that names the action and the count. No match is refused here, not at confirm."""
    run_id, student = require_run(store, run_id), require(student, "a student")
    action = require(action, "a bulk action")
    if action not in DECISION_ACTIONS:
        raise ArteError(f"unknown action {action!r}; choose one of {', '.join(DECISION_ACTIONS)}.")
    flt, _ = _resolved(store, run_id, student, flt)
    ids = decisions.matching_pair_ids(store, run_id, student, flt)
    if not ids:
        raise ArteError("no pairs match the current filter; nothing to decide.")
    return dict(pair_ids=ids, count=len(ids), action=action,
                message=f"Record **{action}** on **{len(ids)} pair(s)** of student {html.escape(student)} (every page "
                        f"of the current filter)? Confirm to record them as one bulk action, which can be undone as one.")


def decide_pairs(store: Store, pair_ids: list[str], action: Any, who: str, why: Any) -> dict:
    """One bulk action: the same decision on `pair_ids`, all or nothing, under one bulk id."""
    action = require(action, "a bulk action")
    recorded = decisions.add_decisions(store, list(pair_ids or []), action, who, str(why or ""))
    bulk_id = recorded[0]["bulk_id"]
    return dict(decisions=recorded, bulk_id=bulk_id,
                message=f"Recorded **{action}** on {len(recorded)} pair(s) by {html.escape(recorded[0]['who'])} as "
                        f"bulk action {bulk_id} (undo it as one below).")


def undo_decision(store: Store, decision_id: Any, who: str, why: Any = "") -> dict:
    """Undo one decision, named by its whole id from the trail (1.5 is refused, never rounded to another id)."""
    number = whole_number(decision_id, "the decision id to undo", minimum=1)
    if number is None:
        raise ArteError("type the id of the decision to undo (see the trail).")
    row = decisions.undo(store, number, who, str(why or ""))
    return dict(decision=row, message=f"Decision {number} undone (undo recorded as {row['decision_id']}).")


def undo_bulk(store: Store, bulk_id: Any, who: str, why: Any = "") -> dict:
    """Undo every decision of one bulk action (its id is in the trail's 'bulk' column) as one."""
    number = whole_number(bulk_id, "the bulk action id to undo", minimum=1)
    if number is None:
        raise ArteError("type the id of the bulk action to undo (the trail's 'bulk' column).")
    undone = decisions.undo_bulk(store, number, who, str(why or ""))
    return dict(undos=undone, message=f"Bulk action {number} undone: {len(undone)} decision(s) taken back.")


def latest_bulk(store: Store, run_id: Any) -> int | None:
    """The run's newest bulk action with something left to undo (what the bulk undo box offers)."""
    return decisions.latest_bulk_id(store, str(run_id)) if run_id else None


def trail_view(store: Store, pair_id: Any, run_id: Any, whole_run: bool = False, blind: bool = False) -> pd.DataFrame:
    """The audit trail of one pair, or of the whole run. Blind review shows only the decisions of pairs
    that have a decision in force: an undecided pair's notes and undone decisions would give others'
    views away before the reviewer decides."""
    if whole_run:
        run_id = require_run(store, run_id)
        trail = decisions.decision_trail(store, run_id=run_id)
        if blind:
            trail = trail[trail["pair_id"].isin(list(decisions.effective_decisions(store, run_id)))]
    else:  # no pair selected: an empty table that still has the right columns
        trail = decisions.decision_trail(store, pair_id=str(pair_id) if pair_id else "\0none")
        if blind and pair_id and decisions.pair(store, str(pair_id))["decision"] is None:
            trail = trail.iloc[0:0]
    return table_ready(_trail_columns(trail), MISSING)


def _trail_columns(trail: pd.DataFrame) -> pd.DataFrame:
    shown = trail.rename(columns={"undone_by": "undone by", "bulk_id": "bulk", "decided_at": "when (UTC)"})
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

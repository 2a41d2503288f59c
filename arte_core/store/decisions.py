"""Human review of preference pairs: the rule for which decision is in force, the pairs table with
that decision, and the append-only decisions themselves.

A decision never changes a pair. It is a row in `pair_decisions` (accept, swap, exclude, note, or an
undo naming the decision it cancels), and DECISION_CTE is the one rule that reads them: a pair's
decision in force is its latest accept/swap/exclude that nobody undid. DPO's training pairs
(`training_pairs`, behind `Store.training_pairs`), the pairs table, agreement numbers and the exports
all apply it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.store.core import Store, utcnow
from arte_core.store.paging import order_by, page_bounds, page_count

DECISION_ACTIONS = ("accept", "swap", "exclude", "note")
DECISION_STATES = ("all", "undecided", "decided", "accept", "swap", "exclude")
# A pair's paired test at a noise level: 'significant' = its discordant items favour the chosen side at
# p ≤ the level, 'within noise' = tested and not significant, 'not tested' = no p (influence and 'both'
# pairs, and pairs built before schema 4).
EVIDENCE_STATES = ("all", "significant", "within noise", "not tested")
PAIR_SORTS = {
    "margin": "p.margin",
    "kind": "p.kind",
    "chosen score": "p.chosen_score",
    "p-value": "p.p_value",
    "pair": "p.pair_id",
}

# The decision in force of every pair that has one (`effective`: decision, decided_by, decision_id):
# its latest accept/swap/exclude that no undo names. `undone` lists the undone decision ids.
DECISION_CTE = """
undone AS (SELECT undoes FROM pair_decisions WHERE undoes IS NOT NULL),
live AS (
    SELECT * FROM pair_decisions
    WHERE action IN ('accept', 'swap', 'exclude') AND decision_id NOT IN (SELECT undoes FROM undone)
),
effective AS (
    SELECT pair_id, arg_max(action, decision_id) AS decision, arg_max(who, decision_id) AS decided_by,
           max(decision_id) AS decision_id
    FROM live GROUP BY pair_id
)
"""


def training_pairs(store: Store, run_id: str, student: str) -> list[dict]:
    """Pairs as DPO will see them: excluded pairs dropped, swapped pairs swapped (the decision in force)."""
    return store.rows(
        f"WITH {DECISION_CTE} SELECT p.pair_id, p.kind, p.prompt, "
        "  CASE WHEN e.decision = 'swap' THEN p.rejected ELSE p.chosen END AS chosen, "
        "  CASE WHEN e.decision = 'swap' THEN p.chosen ELSE p.rejected END AS rejected "
        "FROM pairs p LEFT JOIN effective e USING (pair_id) "
        "WHERE p.run_id = ? AND p.student = ? AND coalesce(e.decision, '') <> 'exclude' ORDER BY p.pair_id",
        [run_id, student],
    )


# -- the pairs table -------------------------------------------------------------------------------

@dataclass
class PairFilter:
    """What the pairs table shows. `max_margin` set = only contested pairs (margin at most this);
    `evidence` one of EVIDENCE_STATES at the noise level `max_p`."""

    kind: str | None = None
    max_margin: float | None = None
    evidence: str = "all"
    max_p: float = 0.05
    state: str = "all"
    search: str | None = None
    sort: str = "margin"
    direction: str = "asc"
    page: int = 1
    page_size: int = 25


# Every pair with its decision in force and its latest decision of any kind (what a user saw last).
PAIRS_FROM = f"""
WITH {DECISION_CTE},
activity AS (
    SELECT pair_id, max(decision_id) AS last_decision_id,
           count(*) FILTER (WHERE action = 'note' AND decision_id NOT IN (SELECT undoes FROM undone)) AS n_notes
    FROM pair_decisions GROUP BY pair_id
)
SELECT p.*, e.decision, e.decided_by, e.decision_id AS effective_decision_id,
       coalesce(a.last_decision_id, 0) AS last_decision_id, coalesce(a.n_notes, 0) AS n_notes
FROM pairs p LEFT JOIN effective e USING (pair_id) LEFT JOIN activity a USING (pair_id)
"""


def _pair_where(run_id: str, student: str | None, f: PairFilter) -> tuple[str, list]:
    """The WHERE clause over PAIRS_FROM for `f`; search text is a bound parameter matched literally."""
    clauses, params = ["p.run_id = ?"], [run_id]
    if student:
        clauses.append("p.student = ?")
        params.append(student)
    if f.kind:
        clauses.append("p.kind = ?")
        params.append(f.kind)
    if f.max_margin is not None:
        clauses.append("p.margin <= ?")
        params.append(float(f.max_margin))
    clauses += _state_clause(f.state)
    evidence, params = _evidence_clause(f), params + ([float(f.max_p)] if f.evidence in EVIDENCE_STATES[1:3] else [])
    clauses += evidence
    if f.search:
        clauses.append("(contains(lower(p.prompt), lower(?)) OR contains(lower(p.chosen), lower(?)) "
                       "OR contains(lower(p.rejected), lower(?)))")
        params += [f.search] * 3
    return " AND ".join(clauses), params


def _state_clause(state: str) -> list[str]:
    if state not in DECISION_STATES:
        raise ArteError(f"decision state {state!r} is not one of {', '.join(DECISION_STATES)}.")
    if state == "all":
        return []
    if state == "undecided":
        return ["e.decision IS NULL"]
    if state == "decided":
        return ["e.decision IS NOT NULL"]
    return [f"e.decision = '{state}'"]  # state is one of the whitelisted literals above


# The one rule for "significant", as PairTest.passes has it (stages/pair_evidence.py).
SIGNIFICANT = "(p.p_value <= ? AND p.n_chosen_only > p.n_rejected_only)"


def _evidence_clause(f: PairFilter) -> list[str]:
    if f.evidence not in EVIDENCE_STATES:
        raise ArteError(f"evidence {f.evidence!r} is not one of {', '.join(EVIDENCE_STATES)}.")
    return {"all": [], "significant": [SIGNIFICANT], "within noise": [f"(p.p_value IS NOT NULL AND NOT {SIGNIFICANT})"],
            "not tested": ["p.p_value IS NULL"]}[f.evidence]


def evidence_counts(store: Store, run_id: str, student: str, max_p: float) -> dict[str, int]:
    """How many of the student's pairs are significant, within noise and not tested at `max_p`."""
    row = store.rows(f"SELECT count(*) FILTER (WHERE {SIGNIFICANT}) AS significant, "
                     f"count(*) FILTER (WHERE p.p_value IS NOT NULL AND NOT {SIGNIFICANT}) AS \"within noise\", "
                     "count(*) FILTER (WHERE p.p_value IS NULL) AS \"not tested\" FROM pairs p "
                     "WHERE p.run_id = ? AND p.student = ?", [float(max_p), float(max_p), run_id, student])[0]
    return {k: int(v) for k, v in row.items()}


def pairs_page(store: Store, run_id: str, student: str | None, f: PairFilter) -> dict:
    """One page of pairs with their effective decision, and the total matching the filter."""
    where, params = _pair_where(run_id, student, f)
    limit, offset = page_bounds(f.page, f.page_size)
    order = order_by(PAIR_SORTS, f.sort, f.direction, "p.kind, p.pair_id")
    total = int(store.scalar(f"SELECT count(*) FROM ({PAIRS_FROM} WHERE {where})", params) or 0)
    rows = store.df(f"{PAIRS_FROM} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", params + [limit, offset])
    return dict(rows=rows, total=total, page=max(1, int(f.page)), pages=page_count(total, limit))


def matching_pair_ids(store: Store, run_id: str, student: str | None, f: PairFilter) -> list[str]:
    """Every pair id the filter matches, across all pages (what a bulk decision applies to)."""
    where, params = _pair_where(run_id, student, f)
    return [r["pair_id"] for r in store.rows(f"SELECT pair_id FROM ({PAIRS_FROM} WHERE {where}) p ORDER BY pair_id",
                                             params)]


def pair(store: Store, pair_id: str) -> dict:
    """One pair with its effective decision and the id of its latest decision of any kind."""
    found = store.rows(f"{PAIRS_FROM} WHERE p.pair_id = ?", [pair_id])
    if not found:
        raise ArteError(f"no pair with id {pair_id[:80]!r}; pick a row in the pairs table.")
    return found[0]


def effective_decisions(store: Store, run_id: str) -> dict[str, str]:
    """pair_id -> the action that currently applies (pairs without one are absent)."""
    rows = store.rows(f"WITH {DECISION_CTE} SELECT e.pair_id, e.decision FROM effective e "
                      "JOIN pairs p USING (pair_id) WHERE p.run_id = ?", [run_id])
    return {r["pair_id"]: r["decision"] for r in rows}


# -- decisions: append-only ------------------------------------------------------------------------

def _check_writable(store: Store) -> None:
    if store.read_only:
        raise ArteError("this store is open read-only; decisions cannot be recorded.")


def _next_decision_id(store: Store) -> int:
    return int(store.scalar("SELECT coalesce(max(decision_id), 0) + 1 FROM pair_decisions"))


def _last_decision(store: Store, pair_id: str) -> dict | None:
    found = store.rows("SELECT * FROM pair_decisions WHERE pair_id = ? ORDER BY decision_id DESC LIMIT 1", [pair_id])
    return found[0] if found else None


def _clean_who(who: str | None) -> str:
    return (who or "").strip()[:100] or "anonymous"


def add_decision(store: Store, pair_id: str, action: str, who: str, why: str = "",
                 expected_last: int | None = None, bulk_id: int | None = None) -> dict:
    """Append one decision. `expected_last` is the latest decision id the user saw on the pair
    (0 = none, None = no check); when someone decided since, `conflict` is set: both decisions stay
    in the trail and this later one wins. An `expected_last` that is neither 0 nor a decision of
    this pair is refused and nothing is stored: the user saw some other state, so recording would
    be a guess."""
    if action not in DECISION_ACTIONS:
        raise ArteError(f"unknown action {action!r}; choose one of {', '.join(DECISION_ACTIONS)}.")
    why = (why or "").strip()
    if action == "note" and not why:
        raise ArteError("a note needs text: write it in the reason box.")
    if expected_last is not None:
        expected_last = _whole_id(expected_last, "the latest decision id seen", minimum=0)
    _check_writable(store)
    with store.transaction():
        if not store.scalar("SELECT count(*) FROM pairs WHERE pair_id = ?", [pair_id]):
            raise ArteError(f"no pair with id {pair_id[:80]!r}; pick a row in the pairs table.")
        previous = _last_decision(store, pair_id)
        last_id = previous["decision_id"] if previous else 0
        if expected_last and not store.scalar(
                "SELECT count(*) FROM pair_decisions WHERE decision_id = ? AND pair_id = ?", [expected_last, pair_id]):
            latest = f"its latest is {last_id}" if last_id else "it has none yet"
            raise ArteError(f"the latest decision id you saw, {expected_last}, is not a decision on pair {pair_id} "
                            f"({latest}); reopen the pair to see its decisions and decide again. Nothing was recorded.")
        conflict = expected_last is not None and expected_last != last_id
        row = dict(decision_id=_next_decision_id(store), pair_id=pair_id, action=action, who=_clean_who(who),
                   why=why, undoes=None, decided_at=utcnow(), bulk_id=bulk_id)
        store.insert("pair_decisions", [row])
    return dict(decision=row, conflict=conflict, previous=previous if conflict else None)


def add_decisions(store: Store, pair_ids: list[str], action: str, who: str, why: str = "") -> list[dict]:
    """The same decision on many pairs, all or nothing; the rows share a bulk id (the first row's
    decision id), so `undo_bulk` can take the whole batch back."""
    if not pair_ids:
        raise ArteError("no pairs match the current filter; nothing was decided.")
    with store.transaction():
        bulk_id = _next_decision_id(store)
        return [add_decision(store, pid, action, who, why, bulk_id=bulk_id)["decision"] for pid in pair_ids]


def undo_bulk(store: Store, bulk_id: int, who: str, why: str = "") -> list[dict]:
    """Undo every decision of one bulk action that is not undone yet, all or nothing; the undos share a
    bulk id of their own. A bulk action with nothing left to undo is refused."""
    bulk_id = _whole_id(bulk_id, "the bulk action id to undo", minimum=1)
    _check_writable(store)
    with store.transaction():
        members = store.rows("SELECT d.decision_id FROM pair_decisions d WHERE d.bulk_id = ? AND d.action <> 'undo' "
                             "AND d.decision_id NOT IN (SELECT undoes FROM pair_decisions WHERE undoes IS NOT NULL) "
                             "ORDER BY d.decision_id", [bulk_id])
        if not members:
            known = store.scalar("SELECT count(*) FROM pair_decisions WHERE bulk_id = ? AND action <> 'undo'", [bulk_id])
            raise ArteError(f"bulk action {bulk_id} was already undone." if known else
                            f"no bulk action with id {bulk_id}; the trail's 'bulk' column names them.")
        undo_batch = _next_decision_id(store)
        return [undo(store, m["decision_id"], who, why, bulk_id=undo_batch) for m in members]


def bulk_size(store: Store, bulk_id: int) -> int:
    """How many decisions one bulk action recorded (0: no such bulk action)."""
    return int(store.scalar("SELECT count(*) FROM pair_decisions WHERE bulk_id = ? AND action <> 'undo'",
                            [int(bulk_id)]) or 0)


def latest_bulk_id(store: Store, run_id: str) -> int | None:
    """The newest bulk action of the run that still has a decision nobody undid (what undo offers)."""
    return store.scalar("SELECT max(d.bulk_id) FROM pair_decisions d JOIN pairs p USING (pair_id) "
                        "WHERE p.run_id = ? AND d.action <> 'undo' AND d.decision_id NOT IN "
                        "(SELECT undoes FROM pair_decisions WHERE undoes IS NOT NULL)", [run_id])


def undo(store: Store, decision_id: int, who: str, why: str = "", bulk_id: int | None = None) -> dict:
    """Append an 'undo' of one earlier decision; the pair falls back to its previous live decision."""
    decision_id = _whole_id(decision_id, "the decision id to undo", minimum=1)
    _check_writable(store)
    with store.transaction():
        found = store.rows("SELECT * FROM pair_decisions WHERE decision_id = ?", [decision_id])
        if not found:
            raise ArteError(f"no decision with id {decision_id}; pick one from the trail.")
        target = found[0]
        if target["action"] == "undo":
            raise ArteError(f"decision {decision_id} is itself an undo; decide the pair again instead.")
        if store.scalar("SELECT count(*) FROM pair_decisions WHERE undoes = ?", [decision_id]):
            raise ArteError(f"decision {decision_id} was already undone.")
        row = dict(decision_id=_next_decision_id(store), pair_id=target["pair_id"], action="undo",
                   who=_clean_who(who), why=(why or "").strip(), undoes=decision_id, decided_at=utcnow(),
                   bulk_id=bulk_id)
        store.insert("pair_decisions", [row])
    return row


def _whole_id(value: Any, what: str, minimum: int) -> int:
    """A decision id as an int; 1.5 or True is refused, never truncated into another decision's id."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ArteError(f"{what} must be a whole number of at least {minimum}, got {value!r}.")
    return int(value)


def decision_trail(store: Store, pair_id: str | None = None, run_id: str | None = None) -> pd.DataFrame:
    """Decisions, newest first, with who undid each one; for one pair or every pair of a run."""
    if pair_id:
        where, params = "d.pair_id = ?", [pair_id]
    elif run_id:
        where, params = "p.run_id = ?", [run_id]
    else:
        raise ArteError("choose a pair or a run to show its decisions.")
    return store.df(
        "SELECT d.decision_id, d.pair_id, p.kind, d.action, d.who, d.why, d.undoes, u.decision_id AS undone_by, "
        "  d.bulk_id, d.decided_at FROM pair_decisions d JOIN pairs p USING (pair_id) "
        "LEFT JOIN pair_decisions u ON u.undoes = d.decision_id "
        f"WHERE {where} ORDER BY d.decision_id DESC",
        params,
    )


def decided_pairs(store: Store, run_id: str, student: str | None = None) -> pd.DataFrame:
    """Decided pairs (accept/swap/exclude in force) with the proxy's scores: the input of agreement numbers."""
    params: list[Any] = [run_id]
    student_clause = ""
    if student:
        student_clause, params = " AND p.student = ?", params + [student]
    return store.df(
        f"WITH {DECISION_CTE} SELECT p.pair_id, p.kind, p.margin, p.chosen_ref, p.rejected_ref, e.decision "
        f"FROM pairs p JOIN effective e USING (pair_id) WHERE p.run_id = ?{student_clause} ORDER BY p.pair_id",
        params,
    )


def pair_count(store: Store, run_id: str, student: str | None = None) -> int:
    if student:
        return int(store.scalar("SELECT count(*) FROM pairs WHERE run_id = ? AND student = ?", [run_id, student]))
    return int(store.scalar("SELECT count(*) FROM pairs WHERE run_id = ?", [run_id]))


# -- what a pair's test reads ------------------------------------------------------------------------

def draft_item_outcomes(store: Store, run_id: str, student: str) -> dict[str, dict[int, bool]]:
    """rationale_id -> {preference item_index: whether the student answered it right} for every draft
    of the run the student scored: the items a pair's paired test compares (stages/pair_evidence.py)."""
    outcomes: dict[str, dict[int, bool]] = {}
    for row in store.rows("SELECT i.rationale_id, i.item_index, i.correct FROM icl_items i "
                          "JOIN icl_scores s USING (rationale_id, student) WHERE s.run_id = ? AND i.student = ?",
                          [run_id, student]):
        outcomes.setdefault(row["rationale_id"], {})[int(row["item_index"])] = bool(row["correct"])
    return outcomes

"""The preference items of a run: an `irt` selection's candidate pool, its pilot answers and fit, and the
per-item figures of the studio's Items view."""

from __future__ import annotations

from arte_core.store.core import Store


def candidate_answered_ids(store: Store, run_id: str, student: str) -> set[str]:
    """The pilot drafts that answered every candidate item (a draft's answers commit together)."""
    return {r["rationale_id"] for r in store.rows(
        "SELECT DISTINCT rationale_id FROM candidate_answers WHERE run_id = ? AND student = ?", [run_id, student])}


def add_candidate_answers(store: Store, rows: list[dict]) -> None:
    """One pilot draft's answers on every candidate, committed together."""
    with store.transaction():
        store.insert("candidate_answers", rows)


def candidate_answers(store: Store, run_id: str, student: str) -> list[dict]:
    return store.rows("SELECT * FROM candidate_answers WHERE run_id = ? AND student = ? "
                      "ORDER BY rationale_id, item_index", [run_id, student])


def item_selection_made(store: Store, run_id: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM item_candidates WHERE run_id = ?", [run_id]))


def item_candidates(store: Store, run_id: str) -> list[dict]:
    return store.rows("SELECT * FROM item_candidates WHERE run_id = ? ORDER BY item_index", [run_id])


def apply_item_selection(store: Store, run_id: str, candidates: list[dict], scores: list[dict],
                         item_rows: list[dict]) -> None:
    """Make an `irt` selection in one transaction: store every candidate with its fit, shrink the run's
    preference split to the selected candidates, and store the pilot drafts' scores on those (`scores`
    with their `item_rows`). A kill before the commit leaves the pilot's answers to fit again; after it,
    the selection is never remade."""
    selected = [c["item_index"] for c in candidates if c["selected"]]
    with store.transaction():
        store.insert("item_candidates", candidates)
        store.execute("DELETE FROM pref_items WHERE run_id = ? AND NOT list_contains(?, item_index)",
                      [run_id, selected])
        if scores:
            store.insert("icl_scores", scores)
            store.insert("icl_items", item_rows)


def item_statistics(store: Store, run_id: str, student: str) -> list[dict]:
    """One row per preference item, and per unselected candidate of an `irt` run: its text, target, whether
    it is selected, its 2PL fit (NULL without one), and the student's answers on it: over every scored
    draft (n_drafts, n_correct; selected items only) and over the pilot (n_pilot, n_pilot_correct)."""
    answered = {r["item_index"]: r for r in store.rows(
        "SELECT i.item_index, count(*) AS n, sum(i.correct::INTEGER) AS k FROM icl_items i "
        "JOIN icl_scores s USING (rationale_id, student) WHERE s.run_id = ? AND s.student = ? "
        "GROUP BY i.item_index", [run_id, student])}
    pilot = {r["item_index"]: r for r in store.rows(
        "SELECT item_index, count(*) AS n, sum(correct::INTEGER) AS k FROM candidate_answers "
        "WHERE run_id = ? AND student = ? GROUP BY item_index", [run_id, student])}
    candidates = {c["item_index"]: c for c in item_candidates(store, run_id)}
    items = {p["item_index"]: dict(p, selected=True) for p in store.split(run_id, "pref_items")}
    for index, candidate in candidates.items():
        items.setdefault(index, dict(run_id=run_id, item_index=index, input=candidate["input"],
                                     target=candidate["target"], selected=False))
    rows = []
    for index in sorted(items):
        item, fit = items[index], candidates.get(index, {})
        done, piloted = answered.get(index, {}), pilot.get(index, {})
        rows.append(dict(item_index=index, input=item["input"], target=item["target"], selected=item["selected"],
                         difficulty=fit.get("difficulty"), discrimination=fit.get("discrimination"),
                         information=fit.get("information"), fit=fit.get("fit"), fit_student=fit.get("student"),
                         n_drafts=int(done.get("n") or 0), n_correct=int(done.get("k") or 0),
                         n_pilot=int(piloted.get("n") or 0), n_pilot_correct=int(piloted.get("k") or 0)))
    return rows

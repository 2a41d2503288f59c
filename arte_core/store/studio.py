"""The studio's SQL: browsing drafts and pairs, human decisions on pairs, and the analysis queries.

Every query is parameterised. Text typed by a user only ever reaches DuckDB as a bound parameter
(text search uses `contains` on lower-cased text, so `%`, `_` and quotes are literal characters); sort columns and
directions come from whitelists. Identifiers that depend on data (one accuracy column per
student) are built in pandas after the query, never spliced into SQL.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import pandas as pd

from arte_core.errors import ArteError
from arte_core.store.core import Store, utcnow
from arte_core.store.facts import FACTS, HITS, SAMPLE_KEYS, ensure_draft_facts, item_rowid_range, search_hits

DECISION_ACTIONS = ("accept", "swap", "exclude", "note")
EFFECTIVE_ACTIONS = ("accept", "swap", "exclude")  # the actions that change what DPO trains on
DECISION_STATES = ("all", "undecided", "decided", "accept", "swap", "exclude")
DRAFT_SORTS = {
    "score": "f.accuracy",
    "length": "f.word_count",
    "technique": "f.technique",
    "question": "f.question_idx",
    "question score": "f.question_score",
    "influence": "f.influence",
}
PAIR_SORTS = {
    "margin": "p.margin",
    "kind": "p.kind",
    "chosen score": "p.chosen_score",
    "pair": "p.pair_id",
}
DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
MAX_PAGE_SIZE = 500
# Plots draw at most this many points per trace group; aggregates always use every row.
MAX_PLOT_POINTS = 20_000

# The effective decision of every pair: its latest accept/swap/exclude that nobody undid.
# Store.training_pairs applies the same rule; this CTE also carries who decided and when.
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
),
activity AS (
    SELECT pair_id, max(decision_id) AS last_decision_id,
           count(*) FILTER (WHERE action = 'note' AND decision_id NOT IN (SELECT undoes FROM undone)) AS n_notes
    FROM pair_decisions GROUP BY pair_id
)
"""


def _scalar(store: Store, sql: str, params: list | tuple = ()) -> Any:
    """The first value of a query, fetched completely: DuckDB 2 refuses to register the rows of a
    following Store.insert while a result is only partly fetched (Store.scalar fetches one row)."""
    found = store.rows(sql, params)
    return next(iter(found[0].values())) if found else None


# -- runs, students, techniques -------------------------------------------------------------------

def list_runs(store: Store) -> pd.DataFrame:
    """Every run with its task, models and how far it got."""
    return store.df(
        "SELECT r.run_id, r.task, r.teacher, r.student, r.created_at, "
        "  (SELECT count(*) FROM questions q WHERE q.run_id = r.run_id AND q.origin = 'draft') AS questions, "
        "  (SELECT count(*) FROM rationales x WHERE x.run_id = r.run_id AND x.origin = 'draft') AS rationales, "
        "  (SELECT count(*) FROM icl_scores s WHERE s.run_id = r.run_id) AS scores, "
        "  (SELECT count(*) FROM pairs p WHERE p.run_id = r.run_id) AS pairs "
        "FROM runs r ORDER BY r.created_at, r.run_id"
    )


def list_students(store: Store, run_id: str) -> list[str]:
    """The run's own student, then the other students with ICL scores in the run."""
    own = _scalar(store, "SELECT student FROM runs WHERE run_id = ?", [run_id])
    ordered = [own] if own else []
    return ordered + [s for s in _scored_students(store, run_id) if s != own]


# Per store: (write_count, run_id) -> its scored students. Every drafts page asks, and the answer
# (a scan of every score row) changes only with a write.
_scored: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scored_students(store: Store, run_id: str) -> list[str]:
    """Students with ICL scores in the run, the run's own student first."""
    known = _scored.setdefault(store, {})
    key = (store.write_count, run_id)
    if key not in known:
        known.clear()
        known[key] = [r["student"] for r in store.rows(
            "SELECT DISTINCT s.student FROM icl_scores s WHERE s.run_id = ? "
            "ORDER BY s.student <> (SELECT student FROM runs WHERE run_id = ?), s.student", [run_id, run_id])]
    return list(known[key])


def list_techniques(store: Store, run_id: str, origin: str = "draft") -> list[str]:
    return [r["technique"] for r in store.rows(
        "SELECT DISTINCT technique FROM rationales WHERE run_id = ? AND origin = ? ORDER BY technique",
        [run_id, origin])]


def pair_students(store: Store, run_id: str) -> list[str]:
    return [r["student"] for r in store.rows(
        "SELECT DISTINCT student FROM pairs WHERE run_id = ? ORDER BY student", [run_id])]


def n_pref_items(store: Store, run_id: str, student: str) -> int:
    """Preference questions behind each score (from the scores, else the stored split)."""
    n = _scalar(store, "SELECT max(n_items) FROM icl_scores WHERE run_id = ? AND student = ?", [run_id, student])
    if n:
        return int(n)
    return int(_scalar(store, "SELECT count(*) FROM pref_items WHERE run_id = ?", [run_id]) or 0)


# -- drafts -----------------------------------------------------------------------------------------

@dataclass
class DraftFilter:
    """What the drafts table shows; every field optional. `search` is a literal, case-insensitive text."""

    technique: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    min_words: int | None = None
    max_words: int | None = None
    matches_target: bool | None = None
    solver_agrees: bool | None = None
    search: str | None = None
    origin: str = "draft"
    sort: str = "score"
    direction: str = "desc"
    page: int = 1
    page_size: int = 25


def _draft_rows(store: Store, run_id: str, student: str, f: DraftFilter) -> tuple[str, list]:
    """`FROM ... WHERE ...` selecting the filtered drafts as `f` (text search runs once, see facts.search_hits)."""
    joins, join_params = "", []
    if f.search:
        # A join, not IN (subquery): DuckDB probes a third of a million hits ~2x faster this way.
        joins = f" JOIN {HITS} h ON h.rationale_rowid = f.rationale_rowid AND h.search_id = ?"
        join_params = [search_hits(store, run_id, f.search)]
    clauses, params = ["f.run_id = ?", "f.student = ?", "f.origin = ?"], [run_id, student, f.origin]
    optional = [
        (f.technique, "f.technique = ?"),
        (f.min_score, "f.accuracy >= ?"),
        (f.max_score, "f.accuracy <= ?"),
        (f.min_words, "f.word_count >= ?"),
        (f.max_words, "f.word_count <= ?"),
        (f.matches_target, "f.matches_target = ?"),
        (f.solver_agrees, "f.solver_agrees = ?"),
    ]
    for value, clause in optional:
        if value is not None and value != "":
            clauses.append(clause)
            params.append(value)
    return f"FROM {FACTS} f{joins} WHERE " + " AND ".join(clauses), join_params + params


def _order_by(sorts: dict[str, str], sort: str, direction: str, tie_breakers: str) -> str:
    if sort not in sorts:
        raise ArteError(f"cannot sort by {sort!r}; choose one of {', '.join(sorts)}.")
    if direction not in DIRECTIONS:
        raise ArteError(f"sort direction {direction!r} is neither 'asc' nor 'desc'.")
    return f"{sorts[sort]} {DIRECTIONS[direction]} NULLS LAST, {tie_breakers}"


def _page_bounds(page: int, page_size: int) -> tuple[int, int]:
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise ArteError(f"page size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
    page = max(1, int(page))
    return page_size, (page - 1) * page_size


def drafts_page(store: Store, run_id: str, student: str, f: DraftFilter) -> dict:
    """One page of drafts with the chosen student's score, every student's score and the total count."""
    ensure_draft_facts(store, run_id, student)
    source, params = _draft_rows(store, run_id, student, f)
    limit, offset = _page_bounds(f.page, f.page_size)
    order = _order_by(DRAFT_SORTS, f.sort, f.direction, "f.question_idx, f.technique, f.rationale_id")
    total = int(_scalar(store, f"SELECT count(*) {source}", params) or 0)
    page = store.df(
        "SELECT f.rationale_id, f.question_id, f.question_idx, f.technique, f.word_count, f.matches_target, "
        "  f.solver_agrees, f.accuracy, f.n_items, f.n_unparsed, f.question_score, f.influence "
        f"{source} ORDER BY {order} LIMIT ? OFFSET ?",
        params + [limit, offset],
    )
    rows = _with_texts(store, page)
    rows = _with_student_columns(store, run_id, student, rows)
    return dict(rows=rows, total=total, page=max(1, int(f.page)), pages=max(1, -(-total // limit)))


def _with_texts(store: Store, page: pd.DataFrame) -> pd.DataFrame:
    """The page's question text, target and teacher answer, by primary key (an index lookup per row)."""
    rows = page.copy()
    if rows.empty:
        return rows.assign(teacher_answer=None, question=None, target=None)[_PAGE_COLUMNS]
    answers = store.df("SELECT rationale_id, answer FROM rationales WHERE rationale_id = ANY(?::VARCHAR[])",
                       [page["rationale_id"].tolist()]).set_index("rationale_id")
    questions = store.df("SELECT question_id, input, target FROM questions WHERE question_id = ANY(?::VARCHAR[])",
                         [page["question_id"].unique().tolist()]).set_index("question_id")
    rows["teacher_answer"] = rows["rationale_id"].map(answers["answer"])  # map: a third of a merge's time
    rows["question"] = rows["question_id"].map(questions["input"])
    rows["target"] = rows["question_id"].map(questions["target"])
    return rows[_PAGE_COLUMNS]


_PAGE_COLUMNS = ["rationale_id", "question_idx", "question", "target", "technique", "word_count", "teacher_answer",
                 "matches_target", "solver_agrees", "accuracy", "n_items", "n_unparsed", "question_score", "influence"]


def mean_accuracy(store: Store, run_id: str, student: str, origin: str = "draft") -> float | None:
    """Mean one-shot accuracy of the scored drafts (None when none are scored)."""
    ensure_draft_facts(store, run_id, student)
    return _scalar(store, f"SELECT avg(accuracy) FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ?",
                   [run_id, student, origin])


def _with_student_columns(store: Store, run_id: str, student: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Add one `acc:<student>` column per scored student (pivoted here, not in SQL)."""
    for other in _scored_students(store, run_id):
        if other == student:
            rows[f"acc:{other}"] = rows["accuracy"].astype(float)
            continue
        if rows.empty:
            rows[f"acc:{other}"] = pd.Series(dtype=float)
            continue
        ensure_draft_facts(store, run_id, other)
        scores = store.df(f"SELECT rationale_id, accuracy FROM {FACTS} WHERE run_id = ? AND student = ? "
                          "AND rationale_id = ANY(?::VARCHAR[])", [run_id, other, rows["rationale_id"].tolist()])
        rows[f"acc:{other}"] = rows["rationale_id"].map(scores.set_index("rationale_id")["accuracy"])
    return rows


def rationale_detail(store: Store, rationale_id: str, student: str) -> dict:
    """One draft in full: its question, prompt, text, every student's score and the chosen student's answers."""
    found = store.rows(
        "SELECT r.*, q.input AS question, q.target, q.idx AS question_idx, q.solver_target, q.solver_agrees "
        "FROM rationales r JOIN questions q USING (question_id) WHERE r.rationale_id = ?",
        [rationale_id],
    )
    if not found:
        raise ArteError(f"no draft with id {rationale_id!r}; pick a row in the drafts table.")
    rationale = found[0]
    scores = store.df(
        "SELECT student, accuracy, n_items, n_correct, n_unparsed, icl_format FROM icl_scores "
        "WHERE rationale_id = ? ORDER BY student", [rationale_id])
    items = _item_answers(store, rationale["run_id"], rationale_id, student)
    influence = store.rows("SELECT student, influence, loss_before, loss_after FROM influence_scores "
                           "WHERE rationale_id = ? ORDER BY student", [rationale_id])
    return dict(rationale=rationale, scores=scores, items=items, influence=influence)


def _item_answers(store: Store, run_id: str, rationale_id: str, student: str) -> pd.DataFrame:
    """The student's answer to each preference question with this draft as its demo."""
    select = ("SELECT i.item_index, p.input AS preference_question, p.target, i.answer AS student_answer, i.correct, "
              "  i.output AS student_output "
              "FROM icl_items i LEFT JOIN pref_items p ON p.run_id = ? AND p.item_index = i.item_index "
              "WHERE i.rationale_id = ? AND i.student = ?")
    params = [run_id, rationale_id, student]
    known = item_rowid_range(store, run_id, student, rationale_id)
    if known is not None:
        first, last, n_items = known
        items = store.df(f"{select} AND i.rowid BETWEEN ? AND ? ORDER BY i.item_index", params + [first, last])
        if len(items) == n_items:
            return items
    # no range known, or rowids moved since (a checkpoint may compact them): read them all
    return store.df(f"{select} ORDER BY i.item_index", params)


# -- pairs ------------------------------------------------------------------------------------------

@dataclass
class PairFilter:
    """What the pairs table shows. `max_margin` set = only contested pairs (margin at most this)."""

    kind: str | None = None
    max_margin: float | None = None
    state: str = "all"
    search: str | None = None
    sort: str = "margin"
    direction: str = "asc"
    page: int = 1
    page_size: int = 25


PAIRS_FROM = f"""
WITH {DECISION_CTE}
SELECT p.*, e.decision, e.decided_by, e.decision_id AS effective_decision_id,
       coalesce(a.last_decision_id, 0) AS last_decision_id, coalesce(a.n_notes, 0) AS n_notes
FROM pairs p LEFT JOIN effective e USING (pair_id) LEFT JOIN activity a USING (pair_id)
"""


def _pair_where(run_id: str, student: str | None, f: PairFilter) -> tuple[str, list]:
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


def pairs_page(store: Store, run_id: str, student: str | None, f: PairFilter) -> dict:
    """One page of pairs with their effective decision, and the total matching the filter."""
    where, params = _pair_where(run_id, student, f)
    limit, offset = _page_bounds(f.page, f.page_size)
    order = _order_by(PAIR_SORTS, f.sort, f.direction, "p.kind, p.pair_id")
    total = int(_scalar(store, f"SELECT count(*) FROM ({PAIRS_FROM} WHERE {where})", params) or 0)
    rows = store.df(f"{PAIRS_FROM} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", params + [limit, offset])
    return dict(rows=rows, total=total, page=max(1, int(f.page)), pages=max(1, -(-total // limit)))


def matching_pair_ids(store: Store, run_id: str, student: str | None, f: PairFilter) -> list[str]:
    """Every pair id the filter matches, across all pages (what a bulk decision applies to)."""
    where, params = _pair_where(run_id, student, f)
    return [r["pair_id"] for r in store.rows(f"SELECT pair_id FROM ({PAIRS_FROM} WHERE {where}) p ORDER BY pair_id",
                                             params)]


def pair(store: Store, pair_id: str) -> dict:
    """One pair with its effective decision and the id of its latest decision of any kind."""
    found = store.rows(f"{PAIRS_FROM} WHERE p.pair_id = ?", [pair_id])
    if not found:
        raise ArteError(f"no pair with id {pair_id!r}; pick a row in the pairs table.")
    return found[0]


def effective_decisions(store: Store, run_id: str) -> dict[str, str]:
    """pair_id -> the action that currently applies (pairs without one are absent)."""
    rows = store.rows(f"WITH {DECISION_CTE} SELECT e.pair_id, e.decision FROM effective e "
                      "JOIN pairs p USING (pair_id) WHERE p.run_id = ?", [run_id])
    return {r["pair_id"]: r["decision"] for r in rows}


# -- decisions: append-only ---------------------------------------------------------------------------

def _check_writable(store: Store) -> None:
    if store.read_only:
        raise ArteError("this store is open read-only; decisions cannot be recorded.")


def _next_decision_id(store: Store) -> int:
    return int(_scalar(store, "SELECT coalesce(max(decision_id), 0) + 1 FROM pair_decisions"))


def _last_decision(store: Store, pair_id: str) -> dict | None:
    found = store.rows("SELECT * FROM pair_decisions WHERE pair_id = ? ORDER BY decision_id DESC LIMIT 1", [pair_id])
    return found[0] if found else None


def _clean_who(who: str | None) -> str:
    return (who or "").strip()[:100] or "anonymous"


def add_decision(store: Store, pair_id: str, action: str, who: str, why: str = "",
                 expected_last: int | None = None) -> dict:
    """Append one decision. `expected_last` is the latest decision id the user saw on the pair
    (0 = none); when someone decided since, `conflict` is set: both decisions stay in the trail and
    this later one wins."""
    if action not in DECISION_ACTIONS:
        raise ArteError(f"unknown action {action!r}; choose one of {', '.join(DECISION_ACTIONS)}.")
    why = (why or "").strip()
    if action == "note" and not why:
        raise ArteError("a note needs text: write it in the reason box.")
    _check_writable(store)
    with store.transaction():
        if not _scalar(store, "SELECT count(*) FROM pairs WHERE pair_id = ?", [pair_id]):
            raise ArteError(f"no pair with id {pair_id!r}; pick a row in the pairs table.")
        previous = _last_decision(store, pair_id)
        last_id = previous["decision_id"] if previous else 0
        conflict = expected_last is not None and int(expected_last) != last_id
        row = dict(decision_id=_next_decision_id(store), pair_id=pair_id, action=action, who=_clean_who(who),
                   why=why, undoes=None, decided_at=utcnow())
        store.insert("pair_decisions", [row])
    return dict(decision=row, conflict=conflict, previous=previous if conflict else None)


def add_decisions(store: Store, pair_ids: list[str], action: str, who: str, why: str = "") -> list[dict]:
    """The same decision on many pairs, all or nothing."""
    if not pair_ids:
        raise ArteError("no pairs match the current filter; nothing was decided.")
    with store.transaction():
        return [add_decision(store, pid, action, who, why)["decision"] for pid in pair_ids]


def undo(store: Store, decision_id: int, who: str, why: str = "") -> dict:
    """Append an 'undo' of one earlier decision; the pair falls back to its previous live decision."""
    _check_writable(store)
    with store.transaction():
        found = store.rows("SELECT * FROM pair_decisions WHERE decision_id = ?", [int(decision_id)])
        if not found:
            raise ArteError(f"no decision with id {decision_id}; pick one from the trail.")
        target = found[0]
        if target["action"] == "undo":
            raise ArteError(f"decision {decision_id} is itself an undo; decide the pair again instead.")
        if _scalar(store, "SELECT count(*) FROM pair_decisions WHERE undoes = ?", [int(decision_id)]):
            raise ArteError(f"decision {decision_id} was already undone.")
        row = dict(decision_id=_next_decision_id(store), pair_id=target["pair_id"], action="undo",
                   who=_clean_who(who), why=(why or "").strip(), undoes=int(decision_id), decided_at=utcnow())
        store.insert("pair_decisions", [row])
    return row


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
        "  d.decided_at FROM pair_decisions d JOIN pairs p USING (pair_id) "
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
        return int(_scalar(store, "SELECT count(*) FROM pairs WHERE run_id = ? AND student = ?", [run_id, student]))
    return int(_scalar(store, "SELECT count(*) FROM pairs WHERE run_id = ?", [run_id]))


# -- analysis -----------------------------------------------------------------------------------------

def _sampled(store: Store, select: str, params: list, n_rows: int, max_points: int | None) -> pd.DataFrame:
    """`select`'s rows (facts columns, `sample_key` among them), or a fixed pseudo-random `max_points`
    of them when there are more: those with the smallest sample keys."""
    if max_points is None or n_rows <= max_points:
        return store.df(select, params).drop(columns="sample_key")
    # keep a little over the expected share, then cut to exactly max_points by key
    threshold = min(SAMPLE_KEYS, int(SAMPLE_KEYS * max_points / n_rows * 1.1) + 1)
    frame = store.df(f"{select} AND sample_key < ?", params + [threshold])
    if len(frame) < max_points:  # an unlucky spread of keys: take them all by key
        frame = store.df(f"{select} ORDER BY sample_key LIMIT ?", params + [max_points])
    return frame.nsmallest(max_points, ["sample_key"]).drop(columns="sample_key")


def scored_count(store: Store, run_id: str, student: str, origin: str = "draft") -> int:
    ensure_draft_facts(store, run_id, student)
    return int(_scalar(store, f"SELECT count(accuracy) FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ?",
                       [run_id, student, origin]) or 0)


def length_accuracy(store: Store, run_id: str, student: str, origin: str = "draft",
                    max_points: int | None = MAX_PLOT_POINTS) -> pd.DataFrame:
    """(words, accuracy) of the scored drafts, for the paper's Figure 2: every draft, or a fixed pseudo-random
    sample of `max_points` when there are more (aggregates come from `length_bins`)."""
    ensure_draft_facts(store, run_id, student)
    select = ("SELECT rationale_id, technique, word_count, accuracy, n_items, matches_target, sample_key "
              f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ? AND accuracy IS NOT NULL")
    frame = _sampled(store, select, [run_id, student, origin], scored_count(store, run_id, student, origin), max_points)
    return frame.sort_values(["word_count", "rationale_id"], ignore_index=True)


def length_bins(store: Store, run_id: str, student: str, bin_words: int, origin: str = "draft") -> pd.DataFrame:
    """Mean accuracy, count and sample sd per `bin_words`-word bin over every scored draft."""
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT (word_count // ?) * ? AS bin_start, avg(accuracy) AS mean, count(*) AS count, "
        "  coalesce(stddev_samp(accuracy), 0) AS std "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = ? AND accuracy IS NOT NULL "
        "GROUP BY bin_start ORDER BY bin_start",
        [bin_words, bin_words, run_id, student, origin],
    )


def accuracy_by_technique(store: Store, run_id: str, student: str) -> pd.DataFrame:
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT technique, count(*) AS n, avg(accuracy) AS mean_accuracy, "
        "  coalesce(stddev_samp(accuracy), 0) AS sd, avg(word_count) AS mean_words "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' AND accuracy IS NOT NULL "
        "GROUP BY technique ORDER BY technique",
        [run_id, student],
    )


def question_scores(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """A question's score is the mean of its rationales' scores (as pairs.py computes it)."""
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT question_idx AS idx, question_score AS score, question_n_scored AS n_rationales "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' AND first_of_question "
        "AND question_score IS NOT NULL ORDER BY question_idx",
        [run_id, student],
    )


def teacher_answer_accuracy(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Score of drafts whose teacher answer matches the target vs those that do not."""
    ensure_draft_facts(store, run_id, student)
    return store.df(
        "SELECT matches_target, count(*) AS n, avg(accuracy) AS mean_accuracy, "
        "  coalesce(stddev_samp(accuracy), 0) AS sd "
        f"FROM {FACTS} WHERE run_id = ? AND student = ? AND origin = 'draft' AND accuracy IS NOT NULL "
        "GROUP BY matches_target ORDER BY matches_target",
        [run_id, student],
    )


def origin_scores(store: Store, run_id: str, student: str, max_points: int | None = MAX_PLOT_POINTS) -> pd.DataFrame:
    """Scores of draft and regenerated ('arte') rationales, where the regenerated ones were scored; each
    origin's rows, or a fixed pseudo-random sample of `max_points` of them, with the origin's count in `n_origin`."""
    ensure_draft_facts(store, run_id, student)
    counts = store.rows(
        f"SELECT origin, count(accuracy) AS n FROM {FACTS} WHERE run_id = ? AND student = ? "
        "GROUP BY origin HAVING count(accuracy) > 0 ORDER BY origin", [run_id, student])
    parts = []
    for row in counts:
        select = (f"SELECT origin, rationale_id, accuracy, sample_key FROM {FACTS} "
                  "WHERE run_id = ? AND student = ? AND origin = ? AND accuracy IS NOT NULL")
        part = _sampled(store, select, [run_id, student, row["origin"]], row["n"], max_points)
        parts.append(part.assign(n_origin=row["n"]))
    if not parts:
        return pd.DataFrame(columns=["origin", "rationale_id", "accuracy", "n_origin"])
    return pd.concat(parts, ignore_index=True).sort_values(["origin", "rationale_id"], ignore_index=True)


def evaluation_table(store: Store, run_id: str) -> pd.DataFrame:
    return store.df(
        "SELECT variant, shots, accuracy, n_correct, n_items, n_unparsed, model FROM evaluations "
        "WHERE run_id = ? ORDER BY shots, CASE variant WHEN 'untrained' THEN 0 WHEN 'original' THEN 1 "
        "WHEN 'arte' THEN 2 ELSE 3 END, variant",
        [run_id],
    )


# -- export -------------------------------------------------------------------------------------------

def pair_provenance(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Each pair's origin (run, task, models, signal and style, scores, refs) and its effective decision."""
    return store.df(
        f"WITH {DECISION_CTE} SELECT p.pair_id, p.run_id, u.task, u.teacher, p.student, p.kind, p.signal, p.style, "
        "  p.chosen_ref, p.rejected_ref, p.chosen_score, p.rejected_score, p.margin, e.decision, e.decided_by "
        "FROM pairs p JOIN runs u USING (run_id) LEFT JOIN effective e USING (pair_id) "
        "WHERE p.run_id = ? AND p.student = ? ORDER BY p.pair_id",
        [run_id, student],
    )


def sft_rows(store: Store, run_id: str, dataset: str | None = None) -> pd.DataFrame:
    params: list[Any] = [run_id]
    clause = ""
    if dataset:
        clause, params = " AND e.dataset = ?", params + [dataset]
    return store.df(
        "SELECT e.run_id, u.task, u.teacher, e.dataset, e.idx, e.question_id, e.rationale_id, e.input, "
        "  e.rationale, e.answer FROM sft_examples e JOIN runs u USING (run_id) "
        f"WHERE e.run_id = ?{clause} ORDER BY e.dataset, e.idx",
        params,
    )


def draft_rows(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Every draft with its text and its score for one student (unscored drafts included)."""
    return store.df(
        "SELECT r.run_id, u.task, u.teacher, ? AS student, r.rationale_id, r.question_id, q.idx AS question_idx, "
        "  q.input AS question, q.target, r.technique, r.prompt, r.text AS rationale, r.answer, r.matches_target, "
        "  r.word_count, q.solver_agrees, s.accuracy, s.n_items "
        "FROM rationales r JOIN questions q USING (question_id) JOIN runs u ON u.run_id = r.run_id "
        "LEFT JOIN icl_scores s ON s.rationale_id = r.rationale_id AND s.student = ? "
        "WHERE r.run_id = ? AND r.origin = 'draft' ORDER BY q.idx, r.technique",
        [student, student, run_id],
    )

"""Per run and student, one narrow in-memory table of every draft's numbers, for the studio's queries.

The drafts table and the analysis plots filter, sort and aggregate columns that live in four tables
(rationales, questions, icl_scores, influence_scores) plus a per-question mean. Joining them on
every page view costs seconds at a million drafts; scanning one narrow table costs milliseconds.
`ensure_draft_facts` builds that table for a (run, student) in the connection's TEMP schema
(memory only, so it also works on a read-only store and never changes the file) and rebuilds it
when its source rows change, which a cheap signature of those rows detects on every call.
"""

from __future__ import annotations

import weakref

from arte_core.store.core import Store

FACTS = "temp.draft_facts"
STATE = "temp.draft_facts_state"

# Columns of FACTS. `question_score` is the mean accuracy of the question's scored rationales (pairs.py's
# rule), `question_n_scored` their number; `first_of_question` marks one row per question. The rowid
# range of the draft's icl_items rows (written together, so usually adjacent) lets the draft view
# read its answers without scanning every item row (icl_items' key has three columns, which DuckDB's
# index does not serve).
FACT_COLUMNS = (
    "run_id", "student", "rationale_id", "question_id", "question_idx", "origin", "technique", "word_count",
    "matches_target", "solver_agrees", "accuracy", "n_items", "n_unparsed", "influence", "question_score",
    "question_n_scored", "first_of_question", "items_first_rowid", "items_last_rowid", "rationale_rowid",
    "question_rowid", "sample_key",
)

# Plots sample drafts by `sample_key` (a hash of the id in [0, SAMPLE_KEYS)): deterministic and a plain
# integer filter, where a reservoir sample costs a pass over every row.
SAMPLE_KEYS = 1_000_000

_CREATE = (
    f"""CREATE TEMP TABLE IF NOT EXISTS draft_facts (
        run_id VARCHAR, student VARCHAR, rationale_id VARCHAR, question_id VARCHAR, question_idx INTEGER,
        origin VARCHAR, technique VARCHAR, word_count INTEGER, matches_target BOOLEAN, solver_agrees BOOLEAN,
        accuracy DOUBLE, n_items INTEGER, n_unparsed INTEGER, influence DOUBLE, question_score DOUBLE,
        question_n_scored INTEGER, first_of_question BOOLEAN, items_first_rowid BIGINT, items_last_rowid BIGINT,
        rationale_rowid BIGINT, question_rowid BIGINT, sample_key INTEGER)""",
    "CREATE TEMP TABLE IF NOT EXISTS draft_facts_state (run_id VARCHAR, student VARCHAR, signature VARCHAR)",
)

# Per source table: row count, sum and max of DuckDB's rowid, and sums of the numbers FACTS takes. An
# insert raises max(rowid), a delete changes the count and the rowid sum, and the engine never updates
# these rows in place (a rewrite is a delete and an insert); the numeric sums catch an UPDATE that
# changes a score (floats are rounded to integers first: a parallel float sum is not deterministic).
# Integer sums cost a few milliseconds on a million rows; hashing the
# string ids cost ~100 ms, and timestamps would not do (imported rows keep theirs).
_SIGNATURE = """
SELECT concat_ws('|',
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(idx), count(solver_agrees) FILTER (solver_agrees))
        FROM questions WHERE run_id = $1),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(word_count), count(*) FILTER (matches_target))
        FROM rationales WHERE run_id = $1),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(round(accuracy * 1e9)::HUGEINT), sum(n_items), sum(n_unparsed))
        FROM icl_scores WHERE run_id = $1 AND student = $2),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(round(influence * 1e12)::HUGEINT))
        FROM influence_scores WHERE run_id = $1 AND student = $2)
) AS signature
"""

_BUILD = f"""
INSERT INTO {FACTS} ({", ".join(FACT_COLUMNS)})
WITH s AS (SELECT rationale_id, accuracy, n_items, n_unparsed FROM icl_scores WHERE run_id = $1 AND student = $2),
inf AS (SELECT rationale_id, influence FROM influence_scores WHERE run_id = $1 AND student = $2),
items AS (
    SELECT i.rationale_id, min(i.rowid) AS first_rowid, max(i.rowid) AS last_rowid
    FROM icl_items i SEMI JOIN s USING (rationale_id) WHERE i.student = $2 GROUP BY i.rationale_id
)
SELECT $1, $2, r.rationale_id, r.question_id, q.idx, r.origin, r.technique, r.word_count, r.matches_target,
       q.solver_agrees, s.accuracy, s.n_items, s.n_unparsed, inf.influence,
       avg(s.accuracy) OVER question, count(s.accuracy) OVER question,
       row_number() OVER (question ORDER BY r.rationale_id) = 1, items.first_rowid, items.last_rowid,
       r.rowid, q.rowid, (hash(r.rationale_id) % {SAMPLE_KEYS})::INTEGER
FROM rationales r JOIN questions q USING (question_id)
LEFT JOIN s USING (rationale_id) LEFT JOIN inf USING (rationale_id) LEFT JOIN items USING (rationale_id)
WHERE r.run_id = $1
WINDOW question AS (PARTITION BY r.question_id)
ORDER BY r.origin, q.idx, r.technique, r.rationale_id
"""


def item_rowid_range(store: Store, run_id: str, student: str, rationale_id: str) -> tuple[int, int, int] | None:
    """(first rowid, last rowid, n_items) of a scored draft's icl_items rows, or None when unknown."""
    ensure_draft_facts(store, run_id, student)
    found = store.rows(f"SELECT items_first_rowid, items_last_rowid, n_items FROM {FACTS} "
                       "WHERE run_id = ? AND student = ? AND rationale_id = ?", [run_id, student, rationale_id])
    if not found or found[0]["items_first_rowid"] is None:
        return None
    row = found[0]
    return int(row["items_first_rowid"]), int(row["items_last_rowid"]), int(row["n_items"])


# Per store: the write_count at which each (run, student)'s facts were last found current.
_verified: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ensure_draft_facts(store: Store, run_id: str, student: str) -> None:
    """Make FACTS hold the current numbers of every draft of `run_id` for `student`."""
    verified = _verified.setdefault(store, {})
    if verified.get((run_id, student)) == store.write_count:
        return  # nothing was written since the last check
    _rebuild_if_changed(store, run_id, student)
    verified[(run_id, student)] = store.write_count


def _rebuild_if_changed(store: Store, run_id: str, student: str) -> None:
    key = [run_id, student]  # $1, $2 in the SQL above
    with store.scratch():
        for statement in _CREATE:
            store.execute(statement)
        signature = store.rows(_SIGNATURE, key)[0]["signature"]
        built = store.rows(f"SELECT signature FROM {STATE} WHERE run_id = $1 AND student = $2", key)
        if built and built[0]["signature"] == signature:
            return
        store.execute(f"DELETE FROM {FACTS} WHERE run_id = $1 AND student = $2", key)
        store.execute(f"DELETE FROM {STATE} WHERE run_id = $1 AND student = $2", key)
        store.execute(_BUILD, key)
        store.execute(f"INSERT INTO {STATE} VALUES ($1, $2, $3)", key + [signature])


# ---- text search ---------------------------------------------------------------------------------

HITS = "temp.draft_search_hits"
MAX_CACHED_SEARCHES = 16


def text_match(column: str, needle: str) -> tuple[str, list]:
    """SQL true where `column` contains `needle` literally, ignoring case, and its parameters.

    ILIKE '%needle%' takes DuckDB's fast substring path, but only without an ESCAPE clause; a needle
    holding a wildcard character (`%`, `_`) or a backslash uses contains(lower(..)) instead, which is
    literal and about 1.5x slower.
    """
    if any(c in needle for c in "%_\\"):
        return f"contains(lower({column}), lower(?))", [needle]
    return f"{column} ILIKE ?", [f"%{needle}%"]


def search_hits(store: Store, run_id: str, student: str, needle: str) -> str:
    """The key under which HITS lists the rationale rowids of the drafts whose question, rationale or
    answer contains `needle` (case-insensitive, literal).

    A case-insensitive scan of every rationale text is the one studio query that reads the texts of a
    whole run (≈300 ms at a million drafts here), so its hits are kept for the page count and for
    paging through them, until the next write to the store.
    """
    ensure_draft_facts(store, run_id, student)
    key = "\x1f".join((run_id, student, str(store.write_count), needle))
    with store.scratch():
        store.execute(f"CREATE TEMP TABLE IF NOT EXISTS draft_search_hits (search_key VARCHAR, rationale_rowid BIGINT, "
                      "created DOUBLE)")
        if store.rows(f"SELECT 1 FROM {HITS} WHERE search_key = ? LIMIT 1", [key]):
            return key
        in_question, question_params = text_match("input", needle)
        in_text, text_params = text_match("text", needle)
        in_answer, answer_params = text_match("coalesce(answer, '')", needle)
        store.execute(
            f"INSERT INTO {HITS} SELECT ?, f.rationale_rowid, epoch(now()) FROM {FACTS} f "
            "WHERE f.run_id = ? AND f.student = ? AND ("
            f"f.question_rowid IN (SELECT rowid FROM questions WHERE run_id = ? AND {in_question}) OR "
            f"f.rationale_rowid IN (SELECT rowid FROM rationales WHERE run_id = ? AND ({in_text} OR {in_answer})))",
            [key, run_id, student, run_id, *question_params, run_id, *text_params, *answer_params])
        store.execute(f"INSERT INTO {HITS} VALUES (?, NULL, epoch(now()))", [key])  # marks "searched", even with no hits
        store.execute(
            f"DELETE FROM {HITS} WHERE search_key NOT IN (SELECT search_key FROM {HITS} GROUP BY search_key "
            "ORDER BY max(created) DESC LIMIT ?)", [MAX_CACHED_SEARCHES])
    return key

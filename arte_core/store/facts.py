"""Per run and student, one narrow in-memory table of every draft's numbers, for the studio's queries.

The drafts table and the analysis plots filter, sort and aggregate columns that live in four tables
(rationales, questions, icl_scores, influence_scores) plus a per-question mean. Joining them on
every page view is slow at a million drafts; scanning one narrow table is not (docs/benchmarks.md).
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
    "question_rowid", "sample_key", "balanced_accuracy", "label_copy_rate", "n_truncated", "n_lenient",
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
        rationale_rowid BIGINT, question_rowid BIGINT, sample_key INTEGER, balanced_accuracy DOUBLE,
        label_copy_rate DOUBLE, n_truncated INTEGER, n_lenient INTEGER)""",
    "CREATE TEMP TABLE IF NOT EXISTS draft_facts_state (run_id VARCHAR, student VARCHAR, signature VARCHAR)",
)

# Per source table: row count, sum and max of DuckDB's rowid, and sums of the numbers FACTS takes. An
# insert raises max(rowid), a delete changes the count and the rowid sum, and the engine never updates
# these rows in place (a rewrite is a delete and an insert); the numeric sums catch an UPDATE that
# changes a score (floats are rounded to integers first: a parallel float sum is not deterministic).
# Integer sums are far cheaper than hashing the string ids, and timestamps would not do (imported
# rows keep theirs).
_SIGNATURE = """
SELECT concat_ws('|',
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(idx), count(solver_agrees) FILTER (solver_agrees))
        FROM questions WHERE run_id = $1 AND student IN ('', $2)),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(word_count), count(*) FILTER (matches_target))
        FROM rationales WHERE run_id = $1 AND student IN ('', $2)),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(round(accuracy * 1e9)::HUGEINT), sum(n_items), sum(n_unparsed),
                      sum(round(balanced_accuracy * 1e9)::HUGEINT), sum(round(label_copy_rate * 1e9)::HUGEINT),
                      sum(n_truncated), sum(n_lenient))
        FROM icl_scores WHERE run_id = $1 AND student = $2),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid), sum(round(influence * 1e12)::HUGEINT))
        FROM influence_scores WHERE run_id = $1 AND student = $2)
) AS signature
"""

_BUILD = f"""
INSERT INTO {FACTS} ({", ".join(FACT_COLUMNS)})
WITH s AS (SELECT rationale_id, accuracy, n_items, n_unparsed, balanced_accuracy, label_copy_rate, n_truncated, n_lenient
           FROM icl_scores WHERE run_id = $1 AND student = $2),
inf AS (SELECT rationale_id, influence FROM influence_scores WHERE run_id = $1 AND student = $2),
items AS (
    SELECT i.rationale_id, min(i.rowid) AS first_rowid, max(i.rowid) AS last_rowid
    FROM icl_items i SEMI JOIN s USING (rationale_id) WHERE i.student = $2 GROUP BY i.rationale_id
)
SELECT $1, $2, r.rationale_id, r.question_id, q.idx, r.origin, r.technique, r.word_count, r.matches_target,
       q.solver_agrees, s.accuracy, s.n_items, s.n_unparsed, inf.influence,
       avg(s.accuracy) OVER question, count(s.accuracy) OVER question,
       row_number() OVER (question ORDER BY r.rationale_id) = 1, items.first_rowid, items.last_rowid,
       r.rowid, q.rowid, (hash(r.rationale_id) % {SAMPLE_KEYS})::INTEGER, s.balanced_accuracy, s.label_copy_rate,
       s.n_truncated, s.n_lenient
FROM rationales r JOIN questions q USING (question_id)
LEFT JOIN s USING (rationale_id) LEFT JOIN inf USING (rationale_id) LEFT JOIN items USING (rationale_id)
WHERE r.run_id = $1 AND r.student IN ('', $2)  -- the drafts and this student's regenerated arms
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

SEARCHES = "temp.draft_searches"
HITS = "temp.draft_search_hits"
MAX_CACHED_SEARCHES = 16

# Lower-cased copies of a run's searchable texts, keyed by rowid like FACTS: a plain substring scan of
# text lower-cased once is several times faster than a case-insensitive scan (ILIKE) of the stored
# texts (docs/benchmarks.md).
QUESTION_TEXTS = "temp.question_search_texts"
RATIONALE_TEXTS = "temp.rationale_search_texts"
_CREATE_TEXTS = (
    "CREATE TEMP TABLE IF NOT EXISTS question_search_texts (run_id VARCHAR, question_rowid BIGINT, input VARCHAR)",
    "CREATE TEMP TABLE IF NOT EXISTS rationale_search_texts (run_id VARCHAR, rationale_rowid BIGINT, "
    "question_rowid BIGINT, text VARCHAR, answer VARCHAR)",
    "CREATE TEMP TABLE IF NOT EXISTS search_texts_state (run_id VARCHAR, signature VARCHAR)",
)

# The copies are current while no write could have changed a text (Store.text_write_count) and the
# rows' rowids are unchanged (a compaction at checkpoint may renumber them; FACTS checks the same sums).
_TEXTS_SIGNATURE = """
SELECT concat_ws('|', $2,
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid)) FROM questions WHERE run_id = $1),
    (SELECT concat_ws('/', count(*), sum(rowid), max(rowid)) FROM rationales WHERE run_id = $1)) AS signature
"""

# Per store: the write_count at which each run's copies were last found current.
_texts_verified: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ensure_search_texts(store: Store, run_id: str) -> None:
    """Make the lower-cased copies hold the current texts of `run_id` (built on the run's first search)."""
    verified = _texts_verified.setdefault(store, {})
    if verified.get(run_id) == store.write_count:
        return
    with store.scratch():
        for statement in _CREATE_TEXTS:
            store.execute(statement)
        signature = store.rows(_TEXTS_SIGNATURE, [run_id, str(store.text_write_count)])[0]["signature"]
        built = store.rows("SELECT signature FROM temp.search_texts_state WHERE run_id = ?", [run_id])
        if not built or built[0]["signature"] != signature:
            _copy_texts(store, run_id, signature)
    verified[run_id] = store.write_count


def _copy_texts(store: Store, run_id: str, signature: str) -> None:
    for table in (QUESTION_TEXTS, RATIONALE_TEXTS, "temp.search_texts_state"):
        store.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    store.execute(f"INSERT INTO {QUESTION_TEXTS} SELECT run_id, rowid, lower(input) FROM questions WHERE run_id = ?",
                  [run_id])
    store.execute(f"INSERT INTO {RATIONALE_TEXTS} SELECT r.run_id, r.rowid, q.rowid, lower(r.text), lower(r.answer) "
                  "FROM rationales r JOIN questions q USING (question_id) WHERE r.run_id = ?", [run_id])
    store.execute("INSERT INTO temp.search_texts_state VALUES (?, ?)", [run_id, signature])


def search_hits(store: Store, run_id: str, needle: str) -> int:
    """The search id under which HITS lists the rationale rowids of the drafts whose question, rationale
    or answer contains `needle` (case-insensitive, literal).

    The search reads the lower-cased copies of the run's texts; its hits are kept for the page count
    and for paging through them, until the next write to the store. HITS is keyed by a small integer
    (SEARCHES maps the search to it) so that a search with many hits slows no other search down.
    """
    ensure_search_texts(store, run_id)
    key = "\x1f".join((run_id, str(store.write_count), needle))
    with store.scratch():
        store.execute("CREATE TEMP TABLE IF NOT EXISTS draft_searches (search_id INTEGER, search_key VARCHAR, "
                      "created DOUBLE)")
        store.execute("CREATE TEMP TABLE IF NOT EXISTS draft_search_hits (search_id INTEGER, rationale_rowid BIGINT)")
        found = store.rows(f"SELECT search_id FROM {SEARCHES} WHERE search_key = ?", [key])
        if found:
            return found[0]["search_id"]
        search_id = store.scalar(f"SELECT coalesce(max(search_id), 0) + 1 FROM {SEARCHES}")
        # Every draft of the run has a FACTS row for every student, so the hits come from the copies alone.
        # A UNION of one scan per column: DuckDB runs an OR over the columns slower (docs/benchmarks.md).
        folded = store.scalar("SELECT lower(?)", [needle])  # once, and as DuckDB folds the copies
        store.execute(
            f"INSERT INTO {HITS} SELECT $1, rationale_rowid FROM ("
            f"  SELECT rationale_rowid FROM {RATIONALE_TEXTS} WHERE run_id = $2 AND contains(text, $3) UNION "
            f"  SELECT rationale_rowid FROM {RATIONALE_TEXTS} WHERE run_id = $2 AND contains(answer, $3) UNION "
            f"  SELECT r.rationale_rowid FROM {RATIONALE_TEXTS} r JOIN {QUESTION_TEXTS} q USING (question_rowid) "
            "   WHERE r.run_id = $2 AND q.run_id = $2 AND contains(q.input, $3))",
            [search_id, run_id, folded])
        store.execute(f"INSERT INTO {SEARCHES} VALUES (?, ?, epoch(now()))", [search_id, key])
        evicted = [r["search_id"] for r in store.rows(
            f"SELECT search_id FROM {SEARCHES} ORDER BY created DESC, search_id DESC OFFSET ?", [MAX_CACHED_SEARCHES])]
        if evicted:
            store.execute(f"DELETE FROM {HITS} WHERE list_contains(?, search_id)", [evicted])
            store.execute(f"DELETE FROM {SEARCHES} WHERE list_contains(?, search_id)", [evicted])
    return search_id

"""The drafts table: filtered, sorted pages of drafts with every student's score, and one draft in full.

Filters, sorts and counts scan the per-student facts table (facts.py); only a page's rows fetch their
texts. Text a user types reaches DuckDB only as a bound parameter (search matches it literally,
ignoring case); sort columns come from a whitelist. The one accuracy column per student is added in
pandas after the query, never spliced into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from arte_core.errors import ArteError
from arte_core.store.analysis import copies_label_sql, label_chance
from arte_core.store.catalog import scored_students
from arte_core.store.core import Store
from arte_core.store.facts import FACTS, HITS, ensure_draft_facts, item_rowid_range, search_hits
from arte_core.store.paging import order_by, page_bounds, page_count

DRAFT_SORTS = {
    "score": "f.accuracy",
    "balanced accuracy": "f.balanced_accuracy",
    "label-copy rate": "f.label_copy_rate",
    "cut off": "f.n_truncated",
    "length": "f.word_count",
    "technique": "f.technique",
    "question": "f.question_idx",
    "question score": "f.question_score",
    "influence": "f.influence",
}


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
    min_balanced: float | None = None
    max_balanced: float | None = None
    copies_label: bool | None = None
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
        # A join, not IN (subquery): DuckDB probes many hits faster this way.
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
        (f.min_balanced, "f.balanced_accuracy >= ?"),
        (f.max_balanced, "f.balanced_accuracy <= ?"),
    ]
    for value, clause in optional:
        if value is not None and value != "":
            clauses.append(clause)
            params.append(value)
    if f.copies_label is not None:  # drafts scored before the rate existed match neither yes nor no
        flag, flag_params = copies_label_sql(label_chance(store, run_id))
        clauses.append(f"({flag}) = ?")
        params += flag_params + [f.copies_label]
    return f"FROM {FACTS} f{joins} WHERE " + " AND ".join(clauses), join_params + params


def drafts_page(store: Store, run_id: str, student: str, f: DraftFilter) -> dict:
    """One page of drafts with the chosen student's score, every student's score and the total count."""
    ensure_draft_facts(store, run_id, student)
    source, params = _draft_rows(store, run_id, student, f)
    limit, offset = page_bounds(f.page, f.page_size)
    order = order_by(DRAFT_SORTS, f.sort, f.direction, "f.question_idx, f.technique, f.rationale_id")
    total = int(store.scalar(f"SELECT count(*) {source}", params) or 0)
    flag, flag_params = copies_label_sql(label_chance(store, run_id))
    page = store.df(
        "SELECT f.rationale_id, f.question_id, f.question_idx, f.technique, f.word_count, f.matches_target, "
        "  f.solver_agrees, f.accuracy, f.balanced_accuracy, f.label_copy_rate, "
        f"  {flag} AS copies_label, f.n_items, f.n_unparsed, f.n_truncated, f.n_lenient, f.question_score, "
        f"  f.influence {source} ORDER BY {order} LIMIT ? OFFSET ?",
        flag_params + params + [limit, offset],
    )
    rows = _with_texts(store, page)
    rows = _with_student_columns(store, run_id, student, rows)
    return dict(rows=rows, total=total, page=max(1, int(f.page)), pages=page_count(total, limit))


def _with_texts(store: Store, page: pd.DataFrame) -> pd.DataFrame:
    """The page's question text, target and teacher answer, by primary key (an index lookup per row)."""
    rows = page.copy()
    if rows.empty:
        return rows.assign(teacher_answer=None, question=None, target=None)[_PAGE_COLUMNS]
    answers = store.df("SELECT rationale_id, answer FROM rationales WHERE rationale_id = ANY(?::VARCHAR[])",
                       [page["rationale_id"].tolist()]).set_index("rationale_id")
    questions = store.df("SELECT question_id, input, target FROM questions WHERE question_id = ANY(?::VARCHAR[])",
                         [page["question_id"].unique().tolist()]).set_index("question_id")
    rows["teacher_answer"] = rows["rationale_id"].map(answers["answer"])  # map, not merge: cheaper for a page of rows
    rows["question"] = rows["question_id"].map(questions["input"])
    rows["target"] = rows["question_id"].map(questions["target"])
    return rows[_PAGE_COLUMNS]


# balanced_accuracy .. n_lenient are NULL for drafts scored before schema 3 (and balanced_accuracy for
# tasks without labels); n_lenient is set on every newer score, so it tells the two apart.
_PAGE_COLUMNS = ["rationale_id", "question_idx", "question", "target", "technique", "word_count", "teacher_answer",
                 "matches_target", "solver_agrees", "accuracy", "balanced_accuracy", "label_copy_rate",
                 "copies_label", "n_items", "n_unparsed", "n_truncated", "n_lenient", "question_score", "influence"]


def _with_student_columns(store: Store, run_id: str, student: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Add one `acc:<student>` column per scored student (pivoted here, not in SQL)."""
    for other in scored_students(store, run_id):
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
        "SELECT student, accuracy, balanced_accuracy, label_copy_rate, n_items, n_correct, n_unparsed, n_truncated, "
        "  n_lenient, icl_format, mean_answer_logprob FROM icl_scores "
        "WHERE rationale_id = ? ORDER BY student", [rationale_id])
    scores = _measured_only(scores, "mean_answer_logprob")
    items = _measured_only(_item_answers(store, rationale["run_id"], rationale_id, student), "answer_logprob")
    influence = store.rows("SELECT student, influence, loss_before, loss_after FROM influence_scores "
                           "WHERE rationale_id = ? ORDER BY student", [rationale_id])
    return dict(rationale=rationale, scores=scores, items=items, influence=influence)


def _measured_only(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """`table` without `column` when nothing measured it (answer log-probabilities exist only where
    `score.metric: answer_logprob` ran), so accuracy-only runs show what they always showed."""
    return table.drop(columns=[column]) if table[column].isna().all() else table


def _item_answers(store: Store, run_id: str, rationale_id: str, student: str) -> pd.DataFrame:
    """The student's answer to each preference question with this draft as its demo."""
    select = ("SELECT i.item_index, p.input AS preference_question, p.target, i.answer AS student_answer, i.correct, "
              "  i.parse_mode, i.truncated, i.answer_logprob, i.output AS student_output "
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

"""The Drafts tab: a filtered, sorted page of drafts with a line on score noise, and one draft in full."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import yaml

from arte_core.errors import ArteError
from arte_core.store import Store, analysis, catalog
from arte_core.store import drafts as draft_queries
from arte_core.studio import plots
from arte_core.studio.common import (NO_RUN, PAGE_SIZE, optional_number, page_number, preview, require, require_run,
                                     table_ready, whole_number, yes_no)

DRAFT_SORT_CHOICES = tuple(draft_queries.DRAFT_SORTS)


def draft_filter(technique: Any = None, min_score: Any = None, max_score: Any = None, min_words: Any = None,
                 max_words: Any = None, agrees: Any = None, solver: Any = None, search: Any = None,
                 sort: Any = "score", direction: Any = "desc", page: Any = 1,
                 origin: str = "draft") -> draft_queries.DraftFilter:
    """A DraftFilter from form values, with each value checked and named on error."""
    if origin not in ("draft", "arte"):
        raise ArteError(f"data origin must be 'draft' or 'arte', got {origin!r}.")
    return draft_queries.DraftFilter(
        technique=None if technique in (None, "", "all") else str(technique),
        # Scores are accuracies, so a bound outside [0, 1] is a typo, not a filter that matches nothing.
        min_score=optional_number(min_score, "min score", 0, 1),
        max_score=optional_number(max_score, "max score", 0, 1),
        min_words=whole_number(min_words, "min words", minimum=0),
        max_words=whole_number(max_words, "max words", minimum=0),
        matches_target=yes_no(agrees, "teacher answer matches target"), solver_agrees=yes_no(solver, "solver agrees"),
        search=(str(search) if search else None), origin=origin, sort=str(sort or "score"),
        direction=str(direction or "desc"), page=page_number(page), page_size=PAGE_SIZE)


def drafts_view(store: Store, run_id: Any, student: Any, flt: draft_queries.DraftFilter) -> dict:
    """One page of the drafts table and a line saying which rows it shows and how noisy scores are."""
    if not run_id:
        return dict(table=pd.DataFrame(), page=1, pages=1, total=0, info=NO_RUN)
    run_id, student = require_run(store, run_id), require(student, "a student")
    result = draft_queries.drafts_page(store, run_id, student, flt)
    pages = result["pages"]
    if flt.page > pages:  # a filter shrank the result under the current page: show the last page
        flt.page = pages
        result = draft_queries.drafts_page(store, run_id, student, flt)
    return dict(table=table_ready(_draft_columns(result["rows"])), page=result["page"], pages=pages,
                total=result["total"], info=_drafts_info(store, run_id, student, result, flt.page_size))


def _draft_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Readable column names; the id stays last so a selected row can be opened."""
    shown = rows.rename(columns={"question_idx": "q", "word_count": "words", "matches_target": "answer ok",
                                 "solver_agrees": "solver ok", "accuracy": "score", "question_score": "question score",
                                 "teacher_answer": "teacher answer"})
    shown["question"] = shown["question"].map(lambda t: preview(t, 90))
    keep = ["q", "question", "target", "technique", "words", "teacher answer", "answer ok", "solver ok", "score",
            "question score", "influence"] + [c for c in shown.columns if c.startswith("acc:")] + ["rationale_id"]
    return shown[keep]


def _drafts_info(store: Store, run_id: str, student: str, result: dict, page_size: int) -> str:
    total, page = result["total"], result["page"]
    if total == 0:
        return "No drafts match these filters (text search is literal; clear filters to see all)."
    first = (page - 1) * page_size + 1
    last = min(total, page * page_size)
    n_pref = catalog.n_pref_items(store, run_id, student)
    mean = analysis.mean_accuracy(store, run_id, student)
    mean = float("nan") if mean is None else mean
    return (f"Drafts {first}–{last} of {total} · page {page} of {result['pages']} · "
            f"scores of **{html.escape(student)}**; {plots.noise_note(mean, n_pref)}"
            + _question_source_note(store, run_id))


def _question_source_note(store: Store, run_id: str) -> str:
    """Says so when the run's draft questions come from the task's pool, not from the teacher."""
    config = yaml.safe_load(store.run(run_id)["config_yaml"]) or {}
    if (config.get("elicit") or {}).get("question_source") != "pool":
        return ""
    return (" · questions drawn from the task's labelled pool (elicit.question_source: pool; none is a "
            "preference or test item); the teacher wrote only the rationales")


def draft_detail(store: Store, rationale_id: Any, student: Any) -> dict:
    """A draft in full: metadata (markdown), its question and rationale text, and the student's answers."""
    rationale_id = require(rationale_id, "a draft (click a row of the table)")
    detail = draft_queries.rationale_detail(store, rationale_id, require(student, "a student"))
    r = detail["rationale"]
    scores = ", ".join(f"{html.escape(s.student)} {s.accuracy:.2f} ({s.n_correct}/{s.n_items}, "
                       f"unparsed {s.n_unparsed})" for s in detail["scores"].itertuples()) or "not scored"
    influence = ", ".join(f"{html.escape(i['student'])} {i['influence']:+.4f}" for i in detail["influence"])
    solver = {True: "agrees", False: "disagrees", None: "no solver"}[r["solver_agrees"]]
    meta = (f"**{html.escape(r['technique'])}** · question {r['question_idx']} · {r['word_count']} words · "
            f"teacher answer `{html.escape(str(r['answer']))}` vs target `{html.escape(r['target'])}` "
            f"({'matches' if r['matches_target'] else 'does not match'}) · solver {solver}\n\n"
            f"One-shot accuracy: {scores}" + (f"\n\nInfluence: {influence}" if influence else "")
            + f"\n\n<small>{html.escape(rationale_id)} · origin {html.escape(r['origin'])}</small>")
    return dict(meta=meta, question=f"{r['question']}\n\n(target: {r['target']})", rationale=r["text"],
                prompt=r["prompt"], items=table_ready(_item_columns(detail["items"])))


def _item_columns(items: pd.DataFrame) -> pd.DataFrame:
    shown = items.copy()
    shown["correct"] = shown["correct"].map({True: "✓ right", False: "✗ wrong"})
    shown["student_output"] = shown["student_output"].map(lambda t: preview(t, 200))
    return shown.rename(columns={"item_index": "item", "preference_question": "preference question"})

"""The Drafts tab: a filtered, sorted page of drafts with a line on score noise, and one draft in full.

Scores from an older ARTE Studio (before schema 3) have no balanced accuracy, label-copy rate or parse
modes; they show as OLD ("—") with OLD_NOTE, never as 0.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
import yaml

from arte_core.errors import ArteError
from arte_core.store import Store, analysis, catalog
from arte_core.store import drafts as draft_queries
from arte_core.studio import plots
from arte_core.studio.common import (MISSING, NO_RUN, PAGE_SIZE, optional_number, page_number, preview, require,
                                     require_run, table_ready, whole_number, yes_no, yes_no_cell)

DRAFT_SORT_CHOICES = tuple(draft_queries.DRAFT_SORTS)
# (label, value) for the sort menu: the "score" sort is the column the table calls accuracy
DRAFT_SORT_LABELS = tuple(("accuracy" if key == "score" else key, key) for key in DRAFT_SORT_CHOICES)
OLD = MISSING
OLD_REASON = "scored by an older version; `arte rescore` scores it anew"
OLD_NOTE = f"{OLD} : {OLD_REASON}"
NO_LABELS = "n/a"  # balanced accuracy of a task without a label set (open answers)


def draft_filter(technique: Any = None, min_score: Any = None, max_score: Any = None, min_words: Any = None,
                 max_words: Any = None, agrees: Any = None, solver: Any = None, search: Any = None,
                 sort: Any = "score", direction: Any = "desc", page: Any = 1,
                 origin: str = "draft", min_balanced: Any = None, max_balanced: Any = None,
                 copies_label: Any = None) -> draft_queries.DraftFilter:
    """A DraftFilter from form values, with each value checked and named on error."""
    if origin not in ("draft", "arte", "base"):  # base: the unaligned teacher's arm, written like 'arte'
        raise ArteError(f"data origin must be 'draft', 'arte' or 'base', got {origin!r}.")
    return draft_queries.DraftFilter(
        technique=None if technique in (None, "", "all") else str(technique),
        # Scores are accuracies, so a bound outside [0, 1] is a typo, not a filter that matches nothing.
        min_score=optional_number(min_score, "min score", 0, 1),
        max_score=optional_number(max_score, "max score", 0, 1),
        min_words=whole_number(min_words, "min words", minimum=0),
        max_words=whole_number(max_words, "max words", minimum=0),
        matches_target=yes_no(agrees, "teacher answer matches target"), solver_agrees=yes_no(solver, "solver agrees"),
        min_balanced=optional_number(min_balanced, "min balanced accuracy", 0, 1),
        max_balanced=optional_number(max_balanced, "max balanced accuracy", 0, 1),
        copies_label=yes_no(copies_label, "copies demo label"),
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
    return dict(table=table_ready(_draft_columns(result["rows"]), MISSING), page=result["page"], pages=pages,
                total=result["total"], info=_drafts_info(store, run_id, student, result, flt.page_size))


def _draft_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Readable column names, yes/no booleans and OLD for what an older version did not measure; the id
    stays last so a selected row can be opened."""
    shown = rows.rename(columns={"question_idx": "q", "word_count": "words", "matches_target": "answer ok",
                                 "solver_agrees": "solver ok", "question_score": "question score",
                                 "teacher_answer": "teacher answer", "balanced_accuracy": "balanced accuracy",
                                 "label_copy_rate": "label-copy rate", "copies_label": "copies demo label",
                                 "n_truncated": "cut off", "n_lenient": "lenient"})
    shown["question"] = shown["question"].map(lambda t: preview(t, 90))
    for name in ("answer ok", "solver ok", "copies demo label"):
        shown[name] = shown[name].astype(object).map(yes_no_cell)
    # n_lenient is set on every score since schema 3: where it is missing, an older version scored the draft
    old = shown["lenient"].isna() & shown["accuracy"].notna()
    for name in ("balanced accuracy", "label-copy rate", "copies demo label", "cut off", "lenient"):
        shown[name] = _old_marked(shown[name], old)
    no_labels = shown["balanced accuracy"].isna() & shown["accuracy"].notna()
    shown["balanced accuracy"] = shown["balanced accuracy"].where(~no_labels, NO_LABELS)
    keep = ["q", "question", "target", "technique", "words", "teacher answer", "answer ok", "solver ok", "accuracy",
            "balanced accuracy", "label-copy rate", "copies demo label", "cut off", "lenient", "question score",
            "influence"] + [c for c in shown.columns if c.startswith("acc:")] + ["rationale_id"]
    return shown[keep]


def _old_marked(values: pd.Series, old: pd.Series) -> pd.Series:
    """`values` with OLD where an older version scored the row (object dtype: numbers stay numbers)."""
    marked = values.astype(object).where(values.notna(), None)
    return marked.where(~old, OLD)


def _drafts_info(store: Store, run_id: str, student: str, result: dict, page_size: int) -> str:
    total, page = result["total"], result["page"]
    if total == 0:
        return "No drafts match these filters (text search is literal; clear filters to see all)."
    first = (page - 1) * page_size + 1
    last = min(total, page * page_size)
    n_pref = catalog.n_pref_items(store, run_id, student)
    mean = analysis.mean_accuracy(store, run_id, student)
    mean = float("nan") if mean is None else mean
    old = analysis.old_score_count(store, run_id, student)
    chance = analysis.label_chance(store, run_id)
    return (f"Drafts {first}–{last} of {total} · page {page} of {result['pages']} · "
            f"scores of **{html.escape(student)}**; {plots.noise_note(mean, n_pref)}"
            + (f" · {OLD_NOTE} ({old} of this student's drafts)" if old else "")
            + ("" if math.isnan(chance.chance) else
               f" · copies demo label: label-copy rate ≥ {analysis.COPY_RATE_FLAG} with balanced accuracy within "
               f"{chance.chance:.2f} ± {chance.noise:.2f} (chance over {chance.n_labels} labels ± binomial noise sd)")
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
    scores = "; ".join(_score_line(s) for s in detail["scores"].itertuples()) or "not scored"
    influence = ", ".join(f"{html.escape(i['student'])} {i['influence']:+.4f}" for i in detail["influence"])
    solver = {True: "agrees", False: "disagrees", None: "no solver"}[r["solver_agrees"]]
    meta = (f"**{html.escape(r['technique'])}** · question {r['question_idx']} · {r['word_count']} words · "
            f"teacher answer `{MISSING if r['answer'] is None else html.escape(str(r['answer']))}` vs target `{html.escape(r['target'])}` "
            f"({'matches' if r['matches_target'] else 'does not match'}) · solver {solver}\n\n"
            f"One-shot accuracy: {scores}" + (f"\n\nInfluence: {influence}" if influence else "")
            + f"\n\n<small>{html.escape(rationale_id)} · origin {html.escape(r['origin'])}</small>")
    return dict(meta=meta, question=f"{r['question']}\n\n(target: {r['target']})", rationale=r["text"],
                prompt=r["prompt"], items=table_ready(_item_columns(detail["items"]), MISSING))


def _score_line(s: Any) -> str:
    """One student's scores of a draft: accuracy, and what schema 3 added (or that it is missing)."""
    line = f"{html.escape(s.student)} {s.accuracy:.2f} ({s.n_correct}/{s.n_items}, unparsed {s.n_unparsed}"
    if pd.isna(s.n_lenient):
        return line + f"; balanced accuracy {OLD}, label-copy rate {OLD}: {OLD_REASON})"
    balanced = NO_LABELS if pd.isna(s.balanced_accuracy) else f"{s.balanced_accuracy:.2f}"
    return line + (f", cut off {int(s.n_truncated)}, lenient {int(s.n_lenient)}; balanced accuracy {balanced}, "
                   f"label-copy rate {s.label_copy_rate:.2f})")


# Short headers, so a narrow column does not wrap its name ("studen t_answ er"); the items are the
# preference questions and the answers the student's, as the table's label says.
ITEM_HEADERS = {"item_index": "#", "preference_question": "question", "student_answer": "answer",
                "parse_mode": "parse mode", "truncated": "cut off", "student_output": "output"}


def _item_columns(items: pd.DataFrame) -> pd.DataFrame:
    """The student's answers with how each was read: parse mode strict / lenient / none and whether the
    output was cut off at its token cap (OLD for answers read by an older version, which recorded neither)."""
    shown = items.copy()
    shown["correct"] = shown["correct"].astype(object).map(yes_no_cell)
    old = shown["parse_mode"].isna()
    shown["parse_mode"] = shown["parse_mode"].astype(object).where(~old, OLD)
    shown["truncated"] = shown["truncated"].astype(object).map(yes_no_cell).where(~old, OLD)
    shown["student_output"] = shown["student_output"].map(lambda t: preview(t, 200))
    return shown.rename(columns=ITEM_HEADERS)

"""The Analysis tab: every figure for a run and student, a summary of what they show, and the
evaluation table."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from arte_core.stats import binomial_sd, spearman
from arte_core.store import Store, analysis, catalog
from arte_core.studio import plots
from arte_core.studio.common import NO_RUN, require, require_run, table_ready


def analysis_view(store: Store, run_id: Any, student: Any) -> dict:
    """Every analysis figure for a run and student, a summary and the evaluation table."""
    if not run_id:
        blank = plots.empty_figure("No run yet.")
        return dict(length=blank, technique=blank, questions=blank, teacher_answer=blank, origin=blank,
                    evaluation=blank, evaluation_table=pd.DataFrame(), summary=NO_RUN)
    run_id, student = require_run(store, run_id), require(student, "a student")
    n_pref = catalog.n_pref_items(store, run_id, student)
    lengths = analysis.length_accuracy(store, run_id, student)
    totals = dict(total=analysis.scored_count(store, run_id, student), mean=analysis.mean_accuracy(store, run_id, student),
                  bins=analysis.length_bins(store, run_id, student, plots.BIN_WORDS))
    techniques = analysis.accuracy_by_technique(store, run_id, student)
    questions = analysis.question_scores(store, run_id, student)
    evaluation = analysis.evaluation_table(store, run_id)
    return dict(
        length=plots.length_accuracy_figure(lengths, n_pref, **totals),
        technique=plots.technique_figure(techniques, n_pref),
        questions=plots.question_histogram(questions),
        teacher_answer=plots.teacher_answer_figure(analysis.teacher_answer_accuracy(store, run_id, student)),
        origin=plots.origin_figure(analysis.origin_scores(store, run_id, student)),
        evaluation=plots.evaluation_figure(evaluation),
        evaluation_table=table_ready(evaluation),
        summary=_analysis_summary(lengths, totals, techniques, questions, n_pref),
    )


def _analysis_summary(lengths: pd.DataFrame, totals: dict, techniques: pd.DataFrame, questions: pd.DataFrame,
                      n_pref: int) -> str:
    """Bullet points on the figures; counts, means and bins over every draft, ρ over the plotted ones."""
    if lengths.empty:
        return "No scored drafts for this run and student yet: run the 'score' stage."
    rho = spearman(lengths["word_count"], lengths["accuracy"])
    sampled = f" (on the {len(lengths):,} plotted)" if totals["total"] > len(lengths) else ""
    bins = totals["bins"]
    best_bin = bins.sort_values(["mean", "count"], ascending=False).iloc[0]
    best_tech = techniques.sort_values("mean_accuracy", ascending=False).iloc[0]
    noise = binomial_sd(totals["mean"], n_pref)
    lines = [
        f"- {totals['total']} scored drafts over {n_pref} preference questions; {plots.noise_note(totals['mean'], n_pref)}.",
        f"- Length vs accuracy: Spearman ρ = {'undefined' if rho is None else f'{rho:.2f}'}{sampled}; "
        f"best {plots.BIN_WORDS}-word bin "
        f"{int(best_bin['bin_start'])}–{int(best_bin['bin_start']) + plots.BIN_WORDS} words "
        f"(mean {best_bin['mean']:.2f} over {int(best_bin['count'])} drafts).",
        f"- Best technique: **{html.escape(best_tech['technique'])}** ({best_tech['mean_accuracy']:.3f}); "
        f"technique means spread {techniques['mean_accuracy'].max() - techniques['mean_accuracy'].min():.3f}.",
        f"- Question scores spread sd {questions['score'].std(ddof=0):.3f} vs rationale noise sd {noise:.3f}"
        + (" — questions differ more than noise." if questions['score'].std(ddof=0) > noise else
           " — question differences are within noise."),
    ]
    return "\n".join(lines)

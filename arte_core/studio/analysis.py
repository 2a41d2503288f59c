"""The Analysis tab: every figure for a run and student, a summary of what they show, and the
evaluation table."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from arte_core.stats import binomial_sd, spearman
from arte_core.store import Store, alignment, analysis, catalog
from arte_core.studio import plots
from arte_core.studio.common import NO_RUN, require, require_run, table_ready


def analysis_view(store: Store, run_id: Any, student: Any) -> dict:
    """Every analysis figure for a run and student, a summary and the evaluation table."""
    if not run_id:
        blank = plots.empty_figure("No run yet.")
        return dict(length=blank, technique=blank, questions=blank, teacher_answer=blank, origin=blank,
                    evaluation=blank, label_copy=blank, evaluation_table=pd.DataFrame(), summary=NO_RUN)
    run_id, student = require_run(store, run_id), require(student, "a student")
    n_pref = catalog.n_pref_items(store, run_id, student)
    lengths = analysis.length_accuracy(store, run_id, student)
    totals = dict(total=analysis.scored_count(store, run_id, student), mean=analysis.mean_accuracy(store, run_id, student),
                  bins=analysis.length_bins(store, run_id, student, plots.BIN_WORDS))
    techniques = analysis.accuracy_by_technique(store, run_id, student)
    questions = analysis.question_scores(store, run_id, student)
    evaluation = analysis.evaluation_table(store, run_id, student)
    copies, n_copies = analysis.copy_rate_vs_balanced(store, run_id, student)
    return dict(
        length=plots.length_accuracy_figure(lengths, n_pref, **totals),
        technique=plots.technique_figure(techniques, n_pref),
        questions=plots.question_histogram(questions),
        teacher_answer=plots.teacher_answer_figure(analysis.teacher_answer_accuracy(store, run_id, student)),
        origin=_alignment_or_origin_figure(store, run_id, student),
        evaluation=plots.evaluation_figure(evaluation),
        label_copy=plots.copy_rate_figure(copies, n_copies, analysis.label_chance(store, run_id),
                                          analysis.old_score_count(store, run_id, student)),
        evaluation_table=table_ready(_evaluation_columns(evaluation)),
        summary=_analysis_summary(lengths, totals, techniques, questions, n_pref)
        + _label_copy_line(copies, n_copies, analysis.label_chance(store, run_id))
        + _alignment_line(alignment.alignment_check(store, run_id, student)),
    )


def _alignment_or_origin_figure(store: Store, run_id: str, student: str):
    """The alignment check's figure once `arte check` ran for the student; before, the scores of draft vs
    regenerated rationales where both were scored on the preference items (else a figure saying what to run)."""
    check = alignment.alignment_check(store, run_id, student)
    if check is not None:
        return plots.alignment_figure(check, alignment.check_draft_scores(store, run_id, student))
    return plots.origin_figure(analysis.origin_scores(store, run_id, student))


def _alignment_line(check: dict | None) -> str:
    if check is None or "difference" not in check:
        return ""
    arms = check["arms"]
    return (f"\n- Alignment check: accuracy with aligned teacher drafts {arms['arte']['accuracy']['value']:.3f} vs base "
            f"{arms['base']['accuracy']['value']:.3f}; aligned − base {check['difference']:+.3f} "
            f"[{plots.interval_text(check)}] over {check['n_items']} held-out items (Wilcoxon p = {check['wilcoxon_p']:.3g}).")


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


def _label_copy_line(copies: pd.DataFrame, n: int, chance: analysis.LabelChance) -> str:
    """How many drafts score by repeating the demo's label (on the plotted ones when sampled)."""
    if copies.empty:
        return ""
    flagged = sum(analysis.copies_demo_label(c, b, chance)
                  for c, b in zip(copies["label_copy_rate"], copies["balanced_accuracy"]))
    sampled = f" (of the {len(copies):,} plotted)" if n > len(copies) else ""
    return (f"\n- Label copying: mean label-copy rate {copies['label_copy_rate'].mean():.2f} over {n:,} drafts; "
            f"{flagged}{sampled} copy the demo's label at chance-level balanced accuracy "
            f"({chance.chance:.2f} ± {chance.noise:.2f}).")


OLD = "—"  # the Drafts tab's mark for what an older version did not record


def _evaluation_columns(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The evaluation table with readable headers: accuracy with its Wilson 95% interval, n, and the
    unparsed and cut-off counts and rates (OLD where the evaluation predates truncation records)."""
    if evaluation.empty:
        return evaluation
    shown = evaluation.copy()
    shown["95% CI"] = [f"{low:.3f}–{high:.3f}" for low, high in zip(shown["ci_low"], shown["ci_high"])]
    old = shown["n_truncated"].isna()
    for name in ("n_truncated", "truncated_rate"):
        shown[name] = shown[name].astype(object).where(~old, OLD)
    shown = shown.rename(columns={"n_correct": "correct", "n_items": "n", "n_unparsed": "unparsed",
                                  "unparsed_rate": "unparsed rate", "n_truncated": "cut off",
                                  "truncated_rate": "cut-off rate"})
    return shown[["variant", "shots", "accuracy", "95% CI", "correct", "n", "unparsed", "unparsed rate", "cut off",
                  "cut-off rate", "model"]]

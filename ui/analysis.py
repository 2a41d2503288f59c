"""The Analysis tab: the paper's findings on this run's data (length, technique, question scores, evaluation)."""

import gradio as gr

from arte_core.studio import analysis
from ui.common import StudioContext, guarded

FIGURES = ("length", "technique", "questions", "teacher_answer", "origin", "evaluation", "label_copy")


def build_analysis_tab(ctx: StudioContext, tab: gr.Tab) -> None:
    gr.Markdown("What the paper found, checked on this run: rationale length has no linear relation to one-shot "
                "accuracy (moderate lengths did best), a small student prefers one consistent technique, and "
                "question quality matters more than rationale quality. Score differences below the binomial "
                "noise level are not evidence. A draft whose student repeats the demo's label (label-copy rate "
                "≥ 0.9) at chance-level balanced accuracy measures the label, not the rationale. The alignment check "
                "scores base and aligned teacher drafts on held-out items: the direct test of alignment.")
    refresh = gr.Button("Refresh plots", elem_id="analysis-refresh")
    summary = gr.Markdown(elem_id="analysis-summary")
    plots = {}
    with gr.Row():
        plots["length"] = gr.Plot(show_label=False, label="Length vs accuracy", elem_id="plot-length")
        plots["technique"] = gr.Plot(show_label=False, label="Accuracy by technique", elem_id="plot-technique")
    with gr.Row():
        plots["questions"] = gr.Plot(show_label=False, label="Question scores", elem_id="plot-questions")
        plots["teacher_answer"] = gr.Plot(show_label=False, label="Teacher answer wrong vs right", elem_id="plot-teacher-answer")
    with gr.Row():
        plots["origin"] = gr.Plot(show_label=False, label="Alignment check: aligned vs base teacher drafts",
                                   elem_id="plot-origin")
        plots["evaluation"] = gr.Plot(show_label=False, label="Evaluation", elem_id="plot-evaluation")
    with gr.Row():
        plots["label_copy"] = gr.Plot(show_label=False, label="Label-copy rate vs balanced accuracy",
                                      elem_id="plot-label-copy")
    table = gr.Dataframe(label="Evaluation table", interactive=False, elem_id="analysis-evaluation")

    def analyse(run_id, student):
        view = analysis.analysis_view(ctx.store, run_id, student)
        return (view["summary"], *[view[name] for name in FIGURES], view["evaluation_table"])

    gr.on([tab.select, refresh.click, ctx.student.change], guarded(analyse), [ctx.run, ctx.student],
          [summary, *[plots[name] for name in FIGURES], table], api_name="analysis_plots")

"""The Signals tab: the two student-preference signals side by side — one-shot ICL accuracy and
Montessori-Instruct's local data influence — where a run has both."""

import gradio as gr

from arte_core.studio import common, signals
from ui.common import StudioContext, guarded


def build_signals_tab(ctx: StudioContext, tab: gr.Tab) -> None:
    gr.Markdown("Each draft scored both ways: x = one-shot ICL score of the student with the draft as its demo "
                "(balanced accuracy on label tasks, as the pairs rank), y = change of the student's reference loss "
                "after one optimizer step on the draft (lower = preferred). The summary gives their rank "
                "correlation with its 95% CI, what unrelated signals would give, and each signal's split-half "
                "reliability (how alike two halves of the items rank the drafts) with the items 0.8 would need. "
                "Drafts the two signals rank far apart are listed below, farthest first. To build the pairs from "
                "either signal or both, pick *Pair signal* and *Pair style* in the Runs tab and launch the "
                "`pairs` stage (it replaces the student's pairs; decisions return with their pairs).")
    refresh = gr.Button("Compare signals", elem_id="signals-refresh")
    summary = gr.Markdown(elem_id="signals-summary")
    figure = gr.Plot(show_label=False, label="ICL accuracy vs influence", elem_id="plot-signals")
    disagreements = gr.Dataframe(label="Disagreements (largest rank distance first)", interactive=False, wrap=True,
                                 elem_id="signals-disagreements")

    def compare(run_id, student):
        view = signals.signals_view(ctx.store, run_id, student)
        return view["summary"], view["figure"], view["disagreements"]

    gr.on([tab.select, refresh.click], guarded(compare), [ctx.run, ctx.student],
          [summary, figure, disagreements], api_name="signals_compare")
    _students_section(ctx, tab)


def _students_section(ctx: StudioContext, tab: gr.Tab) -> None:
    """The shown student's draft scores against another student's of the run (several students)."""
    gr.Markdown("### Student vs student\nEach draft's one-shot score for the student shown (x) and for another "
                "student of this run (y): a teacher aligned to one student can only suit another that ranks the "
                "drafts alike.")
    with gr.Row(equal_height=True):
        other = gr.Dropdown([], value=None, label="Compare with student", scale=3, elem_id="signals-other-student",
                            allow_custom_value=True)  # its choices follow the run
        go_button = gr.Button("Compare students", scale=1, elem_id="signals-students-refresh")
    summary = gr.Markdown(elem_id="signals-students-summary")
    figure = gr.Plot(show_label=False, label="Student vs student", elem_id="plot-students")

    def choices(run_id, student, current):
        others = [name for name in common.student_choices(ctx.store, run_id) if name != student]
        return gr.update(choices=others, value=current if current in others else (others[0] if others else None))

    def compare(run_id, student, chosen):
        view = signals.students_view(ctx.store, run_id, student, chosen)
        return view["summary"], view["figure"]

    gr.on([tab.select, ctx.run.change, ctx.student.change], guarded(choices), [ctx.run, ctx.student, other], other,
          api_name=False).then(guarded(compare), [ctx.run, ctx.student, other], [summary, figure], api_name=False)
    gr.on([go_button.click, other.input], guarded(compare), [ctx.run, ctx.student, other], [summary, figure],
          api_name="signals_students")

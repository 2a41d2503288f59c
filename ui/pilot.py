"""The "Student zone (pilot)" tab: a student's `arte pilot` curve, accuracy by difficulty level per built-in
task with its 95% interval and the task's baseline, and the table behind it."""

import gradio as gr

from arte_core.studio import pilot
from ui.common import StudioContext, guarded


def build_pilot_tab(ctx: StudioContext, tab: gr.Tab) -> None:
    gr.Markdown("The student's zone of proximal development: the difficulty levels where its few-shot accuracy is "
                "clearly above the task's baseline yet clearly below full marks, so its preferences between teacher "
                "drafts can carry signal. A level is in the zone when its Wilson 95% interval lies above the baseline "
                "and below 0.95. Measure it with `arte pilot --student STUDENT --db THIS_STORE [--tasks …] "
                "[--levels …] [--n-items 60]`; run the loop there with `task_difficulty`.")
    with gr.Row(equal_height=True):
        students = pilot.pilot_choices(ctx.store)
        student = gr.Dropdown(students, value=students[0] if students else None, label="Student (pilot)", scale=3,
                              allow_custom_value=True, elem_id="pilot-student")
        shots = gr.Number(3, precision=0, minimum=0, label="Shots", scale=1, elem_id="pilot-shots")
        refresh = gr.Button("Show pilot", scale=1, elem_id="pilot-refresh")
    summary = gr.Markdown(elem_id="pilot-summary")
    figure = gr.Plot(show_label=False, label="Accuracy by difficulty level", elem_id="pilot-plot")
    table = gr.Dataframe(label="Pilot cells: accuracy [95% CI] over n items, baseline, unparsed and cut-off rates",
                         interactive=False, wrap=True, elem_id="pilot-table")

    def view(chosen, n_shots):
        shown = pilot.pilot_view(ctx.store, chosen, 3 if n_shots is None else n_shots)
        choices = pilot.pilot_choices(ctx.store)
        value = chosen if chosen in choices else (choices[0] if choices else None)
        return gr.update(choices=choices, value=value), shown["summary"], shown["figure"], shown["table"]

    gr.on([tab.select, refresh.click], guarded(view), [student, shots], [student, summary, figure, table],
          api_name="pilot_view")

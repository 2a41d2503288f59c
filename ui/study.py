"""The Study tab: does tailoring help this student? Arms × tasks over seeds, from this store's evaluated
runs or a study `arte study` wrote, with 95% intervals, n, ARTE − original with its p, and the smallest
difference the design can detect."""

import gradio as gr

from arte_core.studio import study
from ui.common import StudioContext, guarded


def build_study_tab(ctx: StudioContext, tab: gr.Tab) -> None:
    gr.Markdown("Accuracy of each arm (untrained, original teacher's data, ARTE's data) per task, as the mean over "
                "seeds with a 95% interval from a hierarchical bootstrap (seeds, then items), and n, the test items "
                "over all seeds. The ARTE − original rows give the paired difference, its interval and McNemar's "
                "exact p. `arte study --config C --seeds 0 1 2 --tasks …` runs a study and writes the same table "
                "into runs/study-HASH (study.md, study.json, study.html).")
    with gr.Row(equal_height=True):
        source = gr.Dropdown(study.study_choices(ctx.runs_dir), value=study.FROM_STORE, label="Study", scale=4,
                             elem_id="study-source")
        refresh = gr.Button("Show study", scale=1, elem_id="study-refresh")
    summary = gr.Markdown(elem_id="study-summary")
    table = gr.Dataframe(label="Arms × tasks: accuracy [95% CI] n; ARTE − original [95% CI] p n", interactive=False,
                         wrap=True, elem_id="study-table")
    figure = gr.Plot(show_label=False, label="Accuracy per arm and task", elem_id="study-plot")
    numbers = gr.Dataframe(label="The numbers behind the table (rates of unparsed and cut-off answers)",
                           interactive=False, elem_id="study-arms")
    transfer_note = gr.Markdown(elem_id="study-transfer-note")
    transfer = gr.Dataframe(label="Transfer (paper Table 5): teacher aligned to X → student Y, against Y's original-teacher arm",
                            interactive=False, wrap=True, elem_id="study-transfer")

    def view(choice):
        shown = study.study_view(ctx.store, ctx.runs_dir, choice)
        choices = study.study_choices(ctx.runs_dir)
        return (gr.update(choices=choices, value=choice if choice in choices else study.FROM_STORE),
                shown["summary"], shown["table"], shown["figure"], shown["arms"], shown["transfer_note"],
                shown["transfer"])

    gr.on([tab.select, refresh.click], guarded(view), source,
          [source, summary, table, figure, numbers, transfer_note, transfer],
          api_name="study_view")

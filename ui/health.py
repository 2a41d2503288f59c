"""The Health tab: whether the student's preferences measure what they claim, one line per check; and
the pointer line the Drafts and Pairs tabs show above their tables."""

import gradio as gr

from arte_core.studio import health
from ui.common import StudioContext, guarded


def build_health_tab(ctx: StudioContext, tab: gr.Tab) -> None:
    gr.Markdown("Signal health of the chosen run and student. Each line is ok, warn or bad, with its number, its "
                "95% interval where one applies, its n, and what to change. The same lines: `arte health --run RUN "
                "--student STUDENT [--json]`, and `health.json` in every pairs or drafts export.")
    refresh = gr.Button("Check signal health", elem_id="health-refresh")
    summary = gr.Markdown(elem_id="health-summary")
    table = gr.Dataframe(label="Signal health", interactive=False, wrap=True, elem_id="health-table",
                         column_widths=["8%", "20%", "7%", "11%", "5%", "49%"])

    def view(run_id, student):
        shown = health.health_view(ctx.store, run_id, student)
        return shown["summary"], shown["table"]

    gr.on([tab.select, refresh.click], guarded(view), [ctx.run, ctx.student], [summary, table],
          api_name="health_view")


def health_pointer(ctx: StudioContext, demo: gr.Blocks, tab: str) -> gr.Markdown:
    """A Markdown line naming the bad and warn health lines that concern `tab` ('drafts' or 'pairs'),
    refreshed with the run and student (api_name `<tab>_health`)."""
    pointer = gr.Markdown(elem_id=f"{tab}-health")

    def show(run_id, student):
        return health.health_pointer(ctx.store, run_id, student, tab)

    gr.on([demo.load, ctx.run.change, ctx.student.change], guarded(show), [ctx.run, ctx.student], pointer,
          api_name=f"{tab}_health", show_progress="hidden")
    return pointer

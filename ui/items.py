"""The Items tab: each preference item with its 2PL difficulty and discrimination (an 'irt' selection), the
student's share correct with its n and 95% interval, and a flag for items no draft gets wrong or right."""

import gradio as gr

from arte_core.studio import items
from ui.common import StudioContext, guarded


def build_items_tab(ctx: StudioContext, tab: gr.Tab) -> None:
    gr.Markdown("The chosen run's preference items for the chosen student. With `score.selection: irt` the score "
                "stage fitted a 2-parameter IRT model over pilot drafts × candidate items and kept the most "
                "informative; the candidates it left out are listed too. An item every draft gets right (or "
                "wrong) cannot separate drafts.")
    refresh = gr.Button("Show items", elem_id="items-refresh")
    summary = gr.Markdown(elem_id="items-summary")
    table = gr.Dataframe(label="Preference items", interactive=False, wrap=True, elem_id="items-table")

    def view(run_id, student):
        shown = items.items_view(ctx.store, run_id, student)
        return shown["summary"], shown["table"]

    gr.on([tab.select, refresh.click], guarded(view), [ctx.run, ctx.student], [summary, table],
          api_name="items_view")

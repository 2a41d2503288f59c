"""The Guide tab: ARTE in one paragraph with its paper, the loop as a figure, a three-step tour for
educators and the glossary. The words live in arte_core.studio.guide (shared with every tab's tooltips)."""

from __future__ import annotations

import gradio as gr

from arte_core.studio import guide


def build_guide_tab() -> None:
    """The Guide tab's content; call inside an open gr.Tab. Nothing here changes: no listeners."""
    gr.Markdown("## What is ARTE?\n\n" + guide.ARTE_PARAGRAPH, elem_id="guide-intro")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            gr.Markdown("### The loop")
            gr.HTML(guide.loop_svg(), elem_id="guide-loop")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("### A three-step tour for educators\n\n" + guide.tour_markdown(), elem_id="guide-tour")
    with gr.Accordion("Glossary: every term the studio uses", open=True, elem_id="guide-glossary"):
        gr.Markdown(guide.glossary_markdown())

"""The Drafts tab: filter, sort and page through scored drafts; open one to read it with the student's answers."""

import gradio as gr
import pandas as pd

from arte_core.studio import common, drafts
from arte_core.studio.guide import term_info
from ui.common import StudioContext, in_place, notice_state, page_listeners, selected_row_id
from ui.health import health_pointer

ITEM_COLUMNS = list(drafts.ITEM_HEADERS.get(c, c) for c in ("item_index", "preference_question", "target",
                                                           "student_answer", "correct", "parse_mode", "truncated",
                                                           "student_output"))
# The answers table wraps its cells: fixed widths keep each header on one line and the output readable.
ITEM_WIDTHS = ["5%", "24%", "8%", "9%", "8%", "10%", "8%", "28%"]


def build_drafts_tab(ctx: StudioContext, demo: gr.Blocks) -> None:
    gr.Markdown("Every draft rationale with its one-shot score for the chosen student and every other scored "
                "student side by side. Click a row to read it in full with the student's answers. Balanced "
                "accuracy is the mean recall per label (chance: 1 / labels); the label-copy rate is the share "
                "of answers equal to the demo's own; cut off / lenient count answers cut at the token cap / "
                "read only by the fallback parser.")
    with gr.Accordion("Filters", open=True, elem_id="drafts-filters"):
        filters = _filter_widgets(ctx)
    with gr.Row():
        apply = gr.Button("Apply filters", variant="primary", elem_id="drafts-apply")
        prev_page = gr.Button("◀ Previous", elem_id="drafts-prev")
        page = gr.Number(1, label="Page", precision=0, minimum=1, elem_id="drafts-page")
        next_page = gr.Button("Next ▶", elem_id="drafts-next")
    health_pointer(ctx, demo, "drafts")
    notice = notice_state("drafts-notice")
    info = gr.Markdown(elem_id="drafts-info")
    table = gr.Dataframe(label="Drafts", interactive=False, wrap=False, max_height=620, elem_id="drafts-table")
    detail = _detail_widgets()
    _wire(ctx, demo, filters, page, apply, prev_page, next_page, info, table, detail, notice[0])


def _filter_widgets(ctx: StudioContext) -> dict:
    run_id = ctx.run.value
    with gr.Row():
        technique = gr.Dropdown(common.technique_choices(ctx.store, run_id), value="all", label="Technique",
                                allow_custom_value=True, info=term_info("technique"))  # the choices differ per run
        # Text boxes, not gr.Number: an empty box must mean "no bound", and a Number cannot be empty.
        min_score = gr.Textbox(label="Min score", placeholder="any (0–1)", elem_id="drafts-min-score",
                               info=term_info("one-shot score"))
        max_score = gr.Textbox(label="Max score", placeholder="any (0–1)", elem_id="drafts-max-score")
        min_words = gr.Textbox(label="Min words", placeholder="any", elem_id="drafts-min-words")
        max_words = gr.Textbox(label="Max words", placeholder="any", elem_id="drafts-max-words")
    with gr.Row():
        agrees = gr.Radio(list(common.YES_NO_ANY), value="any", label="Teacher answer matches target")
        solver = gr.Radio(list(common.YES_NO_ANY), value="any", label="Solver agrees with target")
        search = gr.Textbox(label="Search question / rationale (literal text)", placeholder="e.g. not True",
                            elem_id="drafts-search")
        sort = gr.Dropdown(list(drafts.DRAFT_SORT_LABELS), value="score", label="Sort by")
        direction = gr.Radio(["desc", "asc"], value="desc", label="Order")
        origin = gr.Radio([("teacher drafts", "draft"), ("regenerated (ARTE)", "arte"),
                           ("regenerated (base teacher)", "base")], value="draft", label="Data",
                          elem_id="drafts-origin", info=term_info("draft", "arm"))
    with gr.Row():  # after the older filters, so the API's argument order stays as it was
        min_balanced = gr.Textbox(label="Min balanced accuracy", placeholder="any (0–1)",
                                  elem_id="drafts-min-balanced", info=term_info("balanced accuracy"))
        max_balanced = gr.Textbox(label="Max balanced accuracy", placeholder="any (0–1)",
                                  elem_id="drafts-max-balanced")
        copies_label = gr.Radio(list(common.YES_NO_ANY), value="any", label="Copies demo label")
    return dict(technique=technique, min_score=min_score, max_score=max_score, min_words=min_words,
                max_words=max_words, agrees=agrees, solver=solver, search=search, sort=sort, direction=direction,
                origin=origin, min_balanced=min_balanced, max_balanced=max_balanced, copies_label=copies_label)


def _detail_widgets() -> dict:
    gr.Markdown("### Selected draft")
    with gr.Row():
        rationale_id = gr.Textbox(label="Draft id (click a row, or paste an id and press Enter)", scale=4,
                                  elem_id="drafts-rationale-id")
        show = gr.Button("Open", scale=1)
    notice = notice_state("drafts-detail-notice")
    meta = gr.Markdown(elem_id="drafts-detail-meta")
    with gr.Row():
        question = gr.Textbox(label="Question", lines=4, interactive=False, elem_classes=["arte-side"])
        rationale = gr.Textbox(label="Rationale (the one-shot demo)", lines=8, interactive=False,
                               elem_classes=["arte-side"], elem_id="drafts-rationale-text")
    with gr.Accordion("Teacher prompt", open=False):
        prompt = gr.Textbox(show_label=False, lines=6, interactive=False, elem_classes=["arte-side"])
    items = gr.Dataframe(pd.DataFrame(columns=ITEM_COLUMNS), interactive=False, wrap=True, max_height=420,
                         column_widths=ITEM_WIDTHS,
                         label="The student's answers on the preference questions with this draft as its demo",
                         elem_id="drafts-items")
    return dict(rationale_id=rationale_id, show=show, meta=meta, question=question, rationale=rationale,
                prompt=prompt, items=items, notice=notice[0])


def _wire(ctx: StudioContext, demo: gr.Blocks, filters: dict, page: gr.Number, apply: gr.Button,
          prev_page: gr.Button, next_page: gr.Button, info: gr.Markdown, table: gr.Dataframe, detail: dict,
          notice: gr.State) -> None:
    store = ctx.store
    filter_inputs = [ctx.run, ctx.student, *filters.values()]

    def query(run_id, student, technique, min_score, max_score, min_words, max_words, agrees, solver, search, sort,
              direction, origin, min_balanced, max_balanced, copies_label, page_number):
        flt = drafts.draft_filter(technique, min_score, max_score, min_words, max_words, agrees, solver, search, sort,
                                  direction, page_number, origin or "draft", min_balanced=min_balanced,
                                  max_balanced=max_balanced, copies_label=copies_label)
        view = drafts.drafts_view(store, run_id, student, flt)
        return view["table"], view["info"], view["page"]

    first_page, previous, following = page_listeners(query)
    outputs = [table, info, page, notice]  # a bad filter value: a warning, and the table stays as it was

    def kept(fn):
        return in_place(fn, 3, notice=True)

    gr.on([demo.load, apply.click, filters["search"].submit, filters["origin"].change, ctx.run.change,
           ctx.student.change], kept(first_page),
          filter_inputs, outputs, api_name="drafts_apply")
    page.submit(kept(query), filter_inputs + [page], outputs, api_name="drafts_query")
    prev_page.click(kept(previous), filter_inputs + [page], outputs, api_name="drafts_page_prev")
    next_page.click(kept(following), filter_inputs + [page], outputs, api_name="drafts_page_next")

    def techniques(run_id):
        return gr.update(choices=common.technique_choices(store, run_id), value="all")

    ctx.run.change(in_place(techniques, 1), ctx.run, filters["technique"], api_name="drafts_techniques")
    _wire_detail(ctx, table, detail)


def _wire_detail(ctx: StudioContext, table: gr.Dataframe, detail: dict) -> None:
    store = ctx.store
    shown = [detail[k] for k in ("meta", "question", "rationale", "prompt", "items")]

    def open_draft(rationale_id, student):
        view = drafts.draft_detail(store, rationale_id, student)
        return view["meta"], view["question"], view["rationale"], view["prompt"], view["items"]

    def select(frame, student, evt: gr.SelectData):
        rationale_id = selected_row_id(frame, evt, "rationale_id")
        return (rationale_id, *open_draft(rationale_id, student))

    # A bogus id: a warning, and the draft shown stays (never blanked).
    gr.on([detail["show"].click, detail["rationale_id"].submit], in_place(open_draft, len(shown), notice=True),
          [detail["rationale_id"], ctx.student], [*shown, detail["notice"]], api_name="drafts_detail")
    table.select(in_place(select, 1 + len(shown), notice=True), [table, ctx.student],
                 [detail["rationale_id"], *shown, detail["notice"]], api_name="drafts_select")

"""The Pairs tab: review preference pairs side by side and accept, swap, exclude or annotate them.

Decisions are appended to the audit trail (who, why, when); undo appends too. Blind mode shows the two
sides in a per-pair seeded random order without margin, scores, decisions or reviewers until the pair is
decided, against position bias. The panel shows the evidence behind each side: its target with the
solver's agreement, the pair's paired test, and the student's answers per item side by side. Deciding
(one pair, in bulk, undo) is wired in ui/pair_decisions.py.
"""

import gradio as gr
import pandas as pd

from arte_core.studio import pairs
from arte_core.studio.guide import term_info
from ui.common import StudioContext, in_place, in_place_status, notice_state, page_listeners, selected_row_id
from ui.health import health_pointer
from ui.pair_decisions import decision_widgets, wire_decisions

TRAIL_COLUMNS = ["decision_id", "pair_id", "kind", "action", "who", "why", "undoes", "undone by", "bulk",
                 "when (UTC)"]


def build_pairs_tab(ctx: StudioContext, demo: gr.Blocks) -> None:
    gr.Markdown("Question pairs (top vs bottom question scores) and rationale pairs (best vs worst rationale of a "
                "question), as the student's one-shot accuracy ranked them. Overrides change what DPO trains on. "
                "Each pair carries a paired exact test on the preference items both sides answered: **within noise** "
                "= its p-value is above the noise level (or its discordant items favour the rejected side); "
                "**not tested** = no p (influence and 'both' pairs, and pairs built before pairs were tested).")
    with gr.Accordion("Filters", open=True, elem_id="pairs-filters"):
        filters = _filter_widgets()
    with gr.Row():
        apply = gr.Button("Apply filters", variant="primary", elem_id="pairs-apply")
        prev_page = gr.Button("◀ Previous")
        page = gr.Number(1, label="Page", precision=0, minimum=1, elem_id="pairs-page")
        next_page = gr.Button("Next ▶")
    notice, _ = notice_state("pairs-notice")
    health_pointer(ctx, demo, "pairs")
    info = gr.Markdown(elem_id="pairs-info")
    agreement = gr.Markdown(elem_id="pairs-agreement")
    table = gr.Dataframe(label="Pairs", interactive=False, wrap=False, max_height=480, elem_id="pairs-table")
    panel = _panel_widgets(ctx)
    listing = dict(filters=filters, page=page, apply=apply, prev=prev_page, next=next_page, info=info,
                   agreement=agreement, table=table, notice=notice)
    _wire_listing(ctx, demo, listing)
    _wire_panel(ctx, listing, panel)


def _filter_widgets() -> dict:
    with gr.Row():
        kind = gr.Radio(list(pairs.PAIR_KINDS), value="all", label="Kind", info=term_info("pair"))
        state = gr.Dropdown(list(pairs.DECISION_STATES), value="all", label="Decision state",
                            info=term_info("decision"))
        contested = gr.Checkbox(False, label="Contested only (low margin)", elem_id="pairs-contested",
                                info=term_info("margin"))
        max_margin = gr.Number(None, label="Contested = margin at most (empty: one binomial sd of a draft's score "
                                           "at this run's n_pref)", minimum=0, elem_id="pairs-max-margin",
                               info=term_info("binomial noise sd"))
    with gr.Row():
        search = gr.Textbox(label="Search prompt / texts (literal text)", elem_id="pairs-search")
        sort = gr.Dropdown(list(pairs.PAIR_SORT_CHOICES), value="margin", label="Sort by")
        direction = gr.Radio(["asc", "desc"], value="asc", label="Order")
        blind = gr.Checkbox(False, label="Blind review: random A/B sides; margin, scores, decisions and reviewers "
                                         "hidden until decided", elem_id="pairs-blind")
    with gr.Row():
        evidence = gr.Dropdown(list(pairs.EVIDENCE_STATES), value="all", label="Paired test",
                               elem_id="pairs-evidence", info=term_info("p-value", "within noise"))
        noise_level = gr.Number(pairs.DEFAULT_NOISE_LEVEL, label="Noise level: significant = p at most",
                                minimum=0, maximum=1, elem_id="pairs-noise-level")
    # blind stays before evidence and noise_level: the listeners take the filters in this order
    return dict(kind=kind, state=state, contested=contested, max_margin=max_margin, search=search, sort=sort,
                direction=direction, blind=blind, evidence=evidence, noise_level=noise_level)


def _panel_widgets(ctx: StudioContext) -> dict:
    gr.Markdown("### Selected pair")
    with gr.Row():
        pair_id = gr.Textbox(label="Pair id (click a row, or paste an id and press Enter)", scale=4,
                             elem_id="pairs-pair-id")
        open_button = gr.Button("Open", scale=1)
    header = gr.Markdown(elem_id="pairs-header")
    prompt = gr.Textbox(label="Prompt", lines=3, interactive=False, elem_classes=["arte-side"])
    with gr.Row(equal_height=True):
        left = gr.Textbox(label="Left", lines=10, interactive=False, elem_classes=["arte-side"], elem_id="pairs-left")
        right = gr.Textbox(label="Right", lines=10, interactive=False, elem_classes=["arte-side"], elem_id="pairs-right")
    sides = gr.Markdown(elem_id="pairs-sides")
    with gr.Accordion("The student's answers per preference item, side by side", open=False):
        items = gr.Dataframe(pd.DataFrame(columns=["#", "question", "target"]), interactive=False, wrap=True,
                             max_height=360, elem_id="pairs-items", show_label=False)
    widgets = dict(pair_id=pair_id, open=open_button, header=header, prompt=prompt, left=left, right=right,
                   sides=sides, items=items)
    widgets.update(decision_widgets(ctx))
    gr.Markdown("### Audit trail")
    with gr.Row():
        whole_run = gr.Checkbox(False, label="Show every decision of the run", elem_id="pairs-trail-run")
        refresh_trail = gr.Button("Refresh trail", size="sm")
    trail = gr.Dataframe(pd.DataFrame(columns=TRAIL_COLUMNS), label="Decisions, newest first", interactive=False,
                         wrap=False, max_height=360, elem_id="pairs-trail")
    widgets.update(whole_run=whole_run, refresh_trail=refresh_trail, trail=trail)
    return widgets


def _query(ctx: StudioContext):
    def query(run_id, student, kind, state, contested, max_margin, search, sort, direction, blind, evidence,
              noise_level, page_number):
        flt = pairs.pair_filter(kind, contested, max_margin, state, search, sort, direction, page_number, evidence,
                                noise_level)
        view = pairs.pairs_view(ctx.store, run_id, student, flt, blind=bool(blind))
        return view["table"], view["info"], view["agreement"], view["page"]
    return query


def _wire_listing(ctx: StudioContext, demo: gr.Blocks, listing: dict) -> None:
    query = _query(ctx)
    f = listing["filters"]
    inputs = [ctx.run, ctx.student, *f.values()]
    outputs = [listing["table"], listing["info"], listing["agreement"], listing["page"], listing["notice"]]

    def kept(fn):
        return in_place(fn, 4, notice=True)

    first_page, previous, following = page_listeners(query)
    gr.on([demo.load, listing["apply"].click, f["search"].submit, f["blind"].change, ctx.run.change,
           ctx.student.change], kept(first_page), inputs, outputs, api_name="pairs_apply")
    listing["page"].submit(kept(query), inputs + [listing["page"]], outputs, api_name="pairs_query")
    listing["prev"].click(kept(previous), inputs + [listing["page"]], outputs, api_name="pairs_page_prev")
    listing["next"].click(kept(following), inputs + [listing["page"]], outputs, api_name="pairs_page_next")


PANEL_KEYS = ("header", "prompt", "left", "right", "action", "expected_last", "sides", "items", "trail", "undo_id",
              "why")


def panel_outputs(panel: dict) -> list:
    """What opening a pair sets: its view, the hidden conflict check, the trail, the undo box, and the
    reason box (cleared: a reason belongs to one decision on one pair)."""
    return [panel[k] for k in PANEL_KEYS]


def panel_values(ctx: StudioContext, pair_id: str | None, blind: bool, whole_run: bool = False,
                 run_id: str | None = None) -> tuple:
    """Values for panel_outputs; an empty panel when no pair is selected."""
    blind = bool(blind)
    trail = pairs.trail_view(ctx.store, pair_id, run_id, bool(whole_run), blind)
    if not pair_id:
        return ("Select a pair in the table.", "", gr.update(value="", label="Left"),
                gr.update(value="", label="Right"), gr.update(), 0, "", pd.DataFrame(columns=["#", "question", "target"]),
                trail, None, "")
    view = pairs.pair_panel(ctx.store, pair_id, blind)
    return (view["header"], view["prompt"], gr.update(value=view["left"], label=view["left_label"]),
            gr.update(value=view["right"], label=view["right_label"]),
            gr.update(choices=view["choices"], value=None), view["expected_last"], view["sides"], view["items"],
            trail, pairs.latest_undoable(ctx.store, pair_id), "")


def _wire_panel(ctx: StudioContext, listing: dict, panel: dict) -> None:
    f = listing["filters"]
    outputs = panel_outputs(panel)
    trail_inputs = [panel["whole_run"], ctx.run]

    def open_pair(pair_id, blind, whole_run, run_id):
        return panel_values(ctx, (pair_id or "").strip() or None, blind, whole_run, run_id)

    def select(frame, blind, whole_run, run_id, evt: gr.SelectData):
        pair_id = selected_row_id(frame, evt, "pair_id")
        return (pair_id, "", *panel_values(ctx, pair_id, blind, whole_run, run_id))

    def open_with_status(*values):
        return (*open_pair(*values), "")

    # A bogus id: the warning in the status line (last, so the API's first output stays the header), and
    # the pair shown stays.
    gr.on([panel["open"].click, panel["pair_id"].submit, f["blind"].change],
          in_place_status(open_with_status, 1 + len(outputs), at=len(outputs)),
          [panel["pair_id"], f["blind"], *trail_inputs], [*outputs, panel["status"]], api_name="pairs_open")
    listing["table"].select(in_place(select, 2 + len(outputs)), [listing["table"], f["blind"], *trail_inputs],
                            [panel["pair_id"], panel["status"], *outputs], api_name="pairs_select")

    def trail(pair_id, whole_run, run_id, blind):
        return pairs.trail_view(ctx.store, pair_id, run_id, bool(whole_run), bool(blind))

    gr.on([panel["whole_run"].change, panel["refresh_trail"].click], in_place(trail, 1),
          [panel["pair_id"], *trail_inputs, f["blind"]], panel["trail"], api_name="pairs_trail")
    wire_decisions(ctx, listing, panel, outputs, open_pair, _query(ctx))

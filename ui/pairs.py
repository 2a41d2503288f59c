"""The Pairs tab: review preference pairs side by side and accept, swap, exclude or annotate them.

Decisions are appended to the audit trail (who, why, when); undo appends too. Blind mode shows the two
sides in a per-pair seeded random order without scores until the pair is decided, against position
bias. Bulk actions apply to every pair the current filter matches.
"""

import gradio as gr
import pandas as pd

from arte_core.studio import pairs
from ui.common import StudioContext, guarded, page_listeners, selected_row_id
from ui.health import health_pointer

TRAIL_COLUMNS = ["decision_id", "pair_id", "kind", "action", "who", "why", "undoes", "undone by", "when (UTC)"]


def build_pairs_tab(ctx: StudioContext, demo: gr.Blocks) -> None:
    gr.Markdown("Question pairs (top vs bottom question scores) and rationale pairs (best vs worst rationale of a "
                "question), as the student's one-shot accuracy ranked them. Overrides change what DPO trains on. "
                "Each pair carries a paired exact test on the preference items both sides answered: **within noise** "
                "= its p-value is above the noise level (or its discordant items favour the rejected side); "
                "**not tested** = no p (influence and 'both' pairs, and pairs built before pairs were tested).")
    filters = _filter_widgets()
    with gr.Row():
        apply = gr.Button("Apply filters", variant="primary", elem_id="pairs-apply")
        prev_page = gr.Button("◀ Previous")
        page = gr.Number(1, label="Page", precision=0, minimum=1, elem_id="pairs-page")
        next_page = gr.Button("Next ▶")
    health_pointer(ctx, demo, "pairs")
    info = gr.Markdown(elem_id="pairs-info")
    agreement = gr.Markdown(elem_id="pairs-agreement")
    table = gr.Dataframe(label="Pairs", interactive=False, wrap=False, max_height=480, elem_id="pairs-table")
    panel = _panel_widgets(ctx)
    listing = dict(filters=filters, page=page, apply=apply, prev=prev_page, next=next_page, info=info,
                   agreement=agreement, table=table)
    _wire_listing(ctx, demo, listing)
    _wire_panel(ctx, listing, panel)


def _filter_widgets() -> dict:
    with gr.Row():
        kind = gr.Radio(list(pairs.PAIR_KINDS), value="all", label="Kind")
        state = gr.Dropdown(list(pairs.DECISION_STATES), value="all", label="Decision state")
        contested = gr.Checkbox(False, label="Contested only (low margin)", elem_id="pairs-contested")
        max_margin = gr.Number(None, label="Contested = margin at most (empty: one binomial sd of a draft's score "
                                           "at this run's n_pref)", minimum=0, elem_id="pairs-max-margin")
    with gr.Row():
        search = gr.Textbox(label="Search prompt / texts (literal text)", elem_id="pairs-search")
        sort = gr.Dropdown(list(pairs.PAIR_SORT_CHOICES), value="margin", label="Sort by")
        direction = gr.Radio(["asc", "desc"], value="asc", label="Order")
        blind = gr.Checkbox(False, label="Blind review: random left/right, scores hidden until decided",
                            elem_id="pairs-blind")
    with gr.Row():
        evidence = gr.Dropdown(list(pairs.EVIDENCE_STATES), value="all", label="Paired test",
                               elem_id="pairs-evidence")
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
    writable = not ctx.read_only
    with gr.Row():
        action = gr.Radio(pairs.action_choices(False, False), label="Decision", elem_id="pairs-action",
                          interactive=writable, scale=3)
        why = gr.Textbox(label="Reason (kept in the audit trail; required for a note)", lines=2, scale=3,
                         elem_id="pairs-why", interactive=writable)
    with gr.Row():
        decide = gr.Button("Record decision", variant="primary", interactive=writable, elem_id="pairs-decide")
        # No `precision` on id boxes: Gradio would round 1.5 to 2, another decision's id; the handler refuses it.
        expected_last = gr.Number(0, label="Latest decision id you saw (conflict check)",
                                  interactive=False, elem_id="pairs-expected-last")
    status = gr.Markdown(elem_id="pairs-status")
    with gr.Accordion("Bulk decision and undo", open=False):
        with gr.Row():
            bulk_action = gr.Dropdown(list(pairs.DECISION_ACTIONS), value="exclude", label="Action for all matching pairs",
                                      interactive=writable)
            bulk = gr.Button("Apply to ALL pairs matching the filter (uses the reason above)", interactive=writable,
                             variant="stop", elem_id="pairs-bulk")
        with gr.Row():
            undo_id = gr.Number(None, label="Decision id to undo", interactive=writable)
            undo = gr.Button("Undo that decision", interactive=writable, elem_id="pairs-undo")
    gr.Markdown("### Audit trail")
    with gr.Row():
        whole_run = gr.Checkbox(False, label="Show every decision of the run", elem_id="pairs-trail-run")
        refresh_trail = gr.Button("Refresh trail", size="sm")
    trail = gr.Dataframe(pd.DataFrame(columns=TRAIL_COLUMNS), label="Decisions, newest first", interactive=False,
                         wrap=False, max_height=360,
                         elem_id="pairs-trail")
    return dict(pair_id=pair_id, open=open_button, header=header, prompt=prompt, left=left, right=right,
                action=action, why=why, decide=decide, expected_last=expected_last, status=status,
                bulk_action=bulk_action, bulk=bulk, undo_id=undo_id, undo=undo, whole_run=whole_run,
                refresh_trail=refresh_trail, trail=trail)


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
    outputs = [listing["table"], listing["info"], listing["agreement"], listing["page"]]

    first_page, previous, following = page_listeners(query)
    gr.on([demo.load, listing["apply"].click, f["search"].submit, f["blind"].change, ctx.run.change,
           ctx.student.change], guarded(first_page), inputs, outputs, api_name="pairs_apply")
    listing["page"].submit(guarded(query), inputs + [listing["page"]], outputs, api_name="pairs_query")
    listing["prev"].click(guarded(previous), inputs + [listing["page"]], outputs, api_name="pairs_page_prev")
    listing["next"].click(guarded(following), inputs + [listing["page"]], outputs, api_name="pairs_page_next")


def _panel_outputs(panel: dict) -> list:
    return [panel[k] for k in ("header", "prompt", "left", "right", "action", "expected_last", "trail", "undo_id")]


def _panel_values(ctx: StudioContext, pair_id: str | None, blind: bool, whole_run: bool = False,
                  run_id: str | None = None) -> tuple:
    """Values for _panel_outputs; an empty panel when no pair is selected."""
    if not pair_id:
        return ("Select a pair in the table.", "", gr.update(value="", label="Left"),
                gr.update(value="", label="Right"), gr.update(), 0, pairs.trail_view(ctx.store, None, run_id, whole_run),
                None)
    view = pairs.pair_panel(ctx.store, pair_id, bool(blind))
    return (view["header"], view["prompt"], gr.update(value=view["left"], label=view["left_label"]),
            gr.update(value=view["right"], label=view["right_label"]),
            gr.update(choices=view["choices"], value=None), view["expected_last"],
            pairs.trail_view(ctx.store, pair_id, run_id, whole_run), pairs.latest_undoable(ctx.store, pair_id))


def _wire_panel(ctx: StudioContext, listing: dict, panel: dict) -> None:
    f = listing["filters"]
    outputs = _panel_outputs(panel)
    trail_inputs = [panel["whole_run"], ctx.run]

    def open_pair(pair_id, blind, whole_run, run_id):
        return _panel_values(ctx, (pair_id or "").strip() or None, blind, whole_run, run_id)

    def select(frame, blind, whole_run, run_id, evt: gr.SelectData):
        pair_id = selected_row_id(frame, evt, "pair_id")
        return (pair_id, "", *_panel_values(ctx, pair_id, blind, whole_run, run_id))

    gr.on([panel["open"].click, panel["pair_id"].submit, f["blind"].change], guarded(open_pair),
          [panel["pair_id"], f["blind"], *trail_inputs], outputs, api_name="pairs_open")
    listing["table"].select(guarded(select), [listing["table"], f["blind"], *trail_inputs],
                            [panel["pair_id"], panel["status"], *outputs], api_name="pairs_select")

    def trail(pair_id, whole_run, run_id):
        return pairs.trail_view(ctx.store, pair_id, run_id, bool(whole_run))

    gr.on([panel["whole_run"].change, panel["refresh_trail"].click], guarded(trail),
          [panel["pair_id"], *trail_inputs], panel["trail"], api_name="pairs_trail")
    _wire_decisions(ctx, listing, panel, open_pair)


def _wire_decisions(ctx: StudioContext, listing: dict, panel: dict, open_pair) -> None:
    f = listing["filters"]
    refresh_inputs = [ctx.run, ctx.student, *f.values(), listing["page"]]
    refresh_outputs = [listing["table"], listing["info"], listing["agreement"], listing["page"]]
    panel_inputs = [panel["pair_id"], f["blind"], panel["whole_run"], ctx.run]
    outputs = [panel["status"], *_panel_outputs(panel)]

    def decide(pair_id, action, why, typed_user, expected_last, blind, whole_run, run_id, request: gr.Request):
        ctx.require_writable("recording decisions")
        result = pairs.decide(ctx.store, pair_id, action, ctx.who(request, typed_user), why, expected_last)
        status = result["message"]
        if result["warning"]:
            gr.Warning(result["warning"], title="Someone else decided this pair")
            status += f"\n\n⚠️ {result['warning']}"
        return (status, *open_pair(pair_id, blind, whole_run, run_id))

    def bulk(run_id, student, kind, state, contested, max_margin, search, sort, direction, blind, evidence,
             noise_level, action, why, typed_user, pair_id, whole_run, request: gr.Request):
        ctx.require_writable("recording decisions")
        flt = pairs.pair_filter(kind, contested, max_margin, state, search, sort, direction, 1, evidence,
                                noise_level)
        message = pairs.decide_bulk(ctx.store, run_id, student, flt, action, ctx.who(request, typed_user), why)["message"]
        # The open pair may be among them: refresh it, so its conflict check starts from the new decision.
        return (message, *open_pair(pair_id, blind, whole_run, run_id))

    def undo(decision_id, why, typed_user, pair_id, blind, whole_run, run_id, request: gr.Request):
        ctx.require_writable("undoing decisions")
        message = pairs.undo_decision(ctx.store, decision_id, ctx.who(request, typed_user), why)["message"]
        return (message, *open_pair(pair_id, blind, whole_run, run_id))

    refresh = guarded(_query(ctx))
    panel["decide"].click(
        guarded(decide), [panel["pair_id"], panel["action"], panel["why"], ctx.user, panel["expected_last"],
                          f["blind"], panel["whole_run"], ctx.run], outputs, api_name="pairs_decide",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_decide")
    panel["bulk"].click(
        guarded(bulk), [ctx.run, ctx.student, *f.values(), panel["bulk_action"], panel["why"], ctx.user,
                        panel["pair_id"], panel["whole_run"]],
        outputs, api_name="pairs_decide_bulk",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_bulk")
    panel["undo"].click(
        guarded(undo), [panel["undo_id"], panel["why"], ctx.user, *panel_inputs], outputs, api_name="pairs_undo",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_undo")

"""Deciding in the Pairs tab: one pair's decision, a bulk decision on every pair the filter matches (asked
first, with the count, and recorded as one bulk action), and undo of one decision or of a bulk action.

The latest decision id the reviewer saw (the conflict check) is hidden state, set whenever a pair is
opened. The reason box is cleared after every decision and whenever another pair is opened, so a reason
is never recorded against the wrong pair. An error (no choice, a bad id) shows in the status line and
leaves the panel as it was.
"""

from __future__ import annotations

from typing import Callable

import gradio as gr

from arte_core.errors import ArteError
from arte_core.studio import pairs
from ui.common import StudioContext, in_place, in_place_status


def decision_widgets(ctx: StudioContext) -> dict:
    writable = not ctx.read_only
    with gr.Row():
        action = gr.Radio(pairs.action_choices(False, False), label="Decision", elem_id="pairs-action",
                          interactive=writable, scale=3)
        why = gr.Textbox(label="Reason (kept in the audit trail; required for a note; cleared after each decision)",
                         lines=2, scale=3, elem_id="pairs-why", interactive=writable)
    decide = gr.Button("Record decision", variant="primary", interactive=writable, elem_id="pairs-decide")
    # The latest decision id the panel showed: 0 = none yet. Hidden: the reviewer never types it.
    expected_last = gr.State(0)
    status = gr.Markdown(elem_id="pairs-status")
    with gr.Accordion("Bulk decision and undo", open=False, elem_id="pairs-bulk-section"):
        with gr.Row():
            bulk_action = gr.Dropdown(list(pairs.DECISION_ACTIONS), value="exclude",
                                      label="Action for all matching pairs", interactive=writable)
            bulk = gr.Button("Apply to ALL pairs matching the filter… (uses the reason above)", interactive=writable,
                             variant="stop", elem_id="pairs-bulk")
        bulk_ids = gr.State(None)  # (action, pair ids) the confirmation names; confirm decides exactly these
        with gr.Group(visible=False) as confirm_box:
            confirm_text = gr.Markdown(elem_id="pairs-bulk-question")
            with gr.Row():
                confirm = gr.Button("Confirm bulk decision", variant="stop", elem_id="pairs-bulk-confirm")
                cancel = gr.Button("Cancel", elem_id="pairs-bulk-cancel")
        with gr.Row():
            undo_id = gr.Number(None, label="Decision id to undo", interactive=writable)
            undo = gr.Button("Undo that decision", interactive=writable, elem_id="pairs-undo")
        with gr.Row():
            bulk_undo_id = gr.Number(None, label="Bulk action id to undo as one (the trail's 'bulk' column)",
                                     interactive=writable, elem_id="pairs-bulk-undo-id")
            bulk_undo = gr.Button("Undo that whole bulk action", interactive=writable, elem_id="pairs-bulk-undo")
    return dict(action=action, why=why, decide=decide, expected_last=expected_last, status=status,
                bulk_action=bulk_action, bulk=bulk, bulk_ids=bulk_ids, confirm_box=confirm_box,
                confirm_text=confirm_text, confirm=confirm, cancel=cancel, undo_id=undo_id, undo=undo,
                bulk_undo_id=bulk_undo_id, bulk_undo=bulk_undo)


def wire_decisions(ctx: StudioContext, listing: dict, panel: dict, shown: list, open_pair: Callable,
                   query: Callable) -> None:
    """Wire decide, undo and bulk; `shown` are the panel's outputs, which `open_pair(...)` fills."""
    f = listing["filters"]
    refresh_inputs = [ctx.run, ctx.student, *f.values(), listing["page"]]
    refresh_outputs = [listing["table"], listing["info"], listing["agreement"], listing["page"], listing["notice"]]
    refresh = in_place(query, 4, notice=True)
    panel_inputs = [panel["pair_id"], f["blind"], panel["whole_run"], ctx.run]
    outputs = [panel["status"], *shown]

    def decide(pair_id, action, why, typed_user, expected_last, blind, whole_run, run_id, request: gr.Request):
        ctx.require_writable("recording decisions")
        result = pairs.decide(ctx.store, pair_id, action, ctx.who(request, typed_user), why, expected_last)
        status = result["message"]
        if result["warning"]:
            gr.Warning(result["warning"], title="Someone else decided this pair")
            status += f"\n\n⚠️ {result['warning']}"
        return (status, *open_pair(pair_id, blind, whole_run, run_id))  # the panel reopened: reason cleared

    def undo(decision_id, why, typed_user, pair_id, blind, whole_run, run_id, request: gr.Request):
        ctx.require_writable("undoing decisions")
        message = pairs.undo_decision(ctx.store, decision_id, ctx.who(request, typed_user), why)["message"]
        return (message, *open_pair(pair_id, blind, whole_run, run_id))

    def undo_bulk(bulk_id, why, typed_user, pair_id, blind, whole_run, run_id, request: gr.Request):
        ctx.require_writable("undoing decisions")
        message = pairs.undo_bulk(ctx.store, bulk_id, ctx.who(request, typed_user), why)["message"]
        return (message, *open_pair(pair_id, blind, whole_run, run_id))

    panel["decide"].click(
        in_place_status(decide, len(outputs)),
        [panel["pair_id"], panel["action"], panel["why"], ctx.user, panel["expected_last"], *panel_inputs[1:]],
        outputs, api_name="pairs_decide",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_decide")
    panel["undo"].click(
        in_place_status(undo, len(outputs)), [panel["undo_id"], panel["why"], ctx.user, *panel_inputs], outputs,
        api_name="pairs_undo",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_undo")
    panel["bulk_undo"].click(
        in_place_status(undo_bulk, len(outputs)), [panel["bulk_undo_id"], panel["why"], ctx.user, *panel_inputs],
        outputs, api_name="pairs_undo_bulk",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_bulk_undo")
    _wire_bulk(ctx, listing, panel, open_pair, (refresh, refresh_inputs, refresh_outputs), outputs)


def _wire_bulk(ctx: StudioContext, listing: dict, panel: dict, open_pair: Callable, refreshing: tuple,
               outputs: list) -> None:
    """Bulk: the button asks (the count, the action), Confirm decides exactly the pairs it counted."""
    f = listing["filters"]
    asked = [panel["status"], panel["bulk_ids"], panel["confirm_text"], panel["confirm_box"]]

    def ask(run_id, student, kind, state, contested, max_margin, search, sort, direction, blind, evidence,
            noise_level, action):
        ctx.require_writable("recording decisions")
        flt = pairs.pair_filter(kind, contested, max_margin, state, search, sort, direction, 1, evidence,
                                noise_level)
        preview = pairs.bulk_preview(ctx.store, run_id, student, flt, action)
        return "", (preview["action"], preview["pair_ids"]), preview["message"], gr.update(visible=True)

    def confirm(chosen, why, typed_user, pair_id, blind, whole_run, run_id, request: gr.Request):
        ctx.require_writable("recording decisions")
        if not chosen:
            raise ArteError("nothing to confirm: press 'Apply to ALL pairs matching the filter…' first.")
        action, pair_ids = chosen
        result = pairs.decide_pairs(ctx.store, pair_ids, action, ctx.who(request, typed_user), why)
        # The open pair may be among them: reopen it, so its conflict check starts from the new decision.
        return (result["message"], *open_pair(pair_id, blind, whole_run, run_id), None, gr.update(visible=False),
                result["bulk_id"])

    def cancel():
        return "Bulk decision cancelled: nothing was recorded.", None, gr.update(visible=False)

    panel["bulk"].click(in_place_status(ask, len(asked)), [ctx.run, ctx.student, *f.values(), panel["bulk_action"]],
                        asked, api_name="pairs_bulk_preview")
    confirmed = [*outputs, panel["bulk_ids"], panel["confirm_box"], panel["bulk_undo_id"]]
    refresh, refresh_inputs, refresh_outputs = refreshing
    panel["confirm"].click(
        in_place_status(confirm, len(confirmed)),
        [panel["bulk_ids"], panel["why"], ctx.user, panel["pair_id"], f["blind"], panel["whole_run"], ctx.run],
        confirmed, api_name="pairs_decide_bulk",
    ).success(refresh, refresh_inputs, refresh_outputs, api_name="pairs_refresh_after_bulk")
    panel["cancel"].click(cancel, None, [panel["status"], panel["bulk_ids"], panel["confirm_box"]],
                          api_name="pairs_bulk_cancel")

"""The studio's Gradio app: a run/student/user bar above the Drafts, Pairs, Analysis, Signals, Health, Runs and
Export tabs.

`build_app(store, jobs, read_only, runs_dir)` returns the Blocks; `app.py` at the repository root
launches it. Every listener has a stable api_name, so each tab can also be driven with gradio_client.
The handlers live in arte_core.studio (one module per tab); this package only wires widgets to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from starlette.middleware import Middleware

from arte_core.studio import common
from arte_core.studio import guide as guide_text
from arte_core.studio import runs as runs_handlers
from ui.analysis import build_analysis_tab
from ui.common import StudioContext, guarded, remember_reviewer
from ui.drafts import build_drafts_tab
from ui.export import build_export_tab
from ui.guide import build_guide_tab
from ui.health import build_health_tab
from ui.items import build_items_tab
from ui.login_guard import HideAppFromStrangers
from ui.pairs import build_pairs_tab
from ui.pilot import build_pilot_tab
from ui.runs import build_runs_tab
from ui.signals import build_signals_tab
from ui.space import login_button, on_a_space, signed_in_name, tab_store, wire_sandbox_cleanup
from ui.study import build_study_tab

if TYPE_CHECKING:  # the UI reaches the store through the handlers; the type is for reading only
    from arte_core.store import Store

TITLE = "ARTE Studio"
READ_ONLY_NOTICE = ("**Read-only studio.** Browsing, filtering, plots and file exports work; recording decisions, "
                    "launching runs and pushing to the Hub are disabled here.")
CSS = """
.arte-notice {border-left: 4px solid #e0a800; padding: 4px 12px; background: #fff8e1;}
.arte-side textarea {font-family: ui-monospace, monospace; font-size: 13px;}
.arte-banner {border-left: 4px solid #3949ab; padding: 4px 12px; background: #e8eaf6;}
/* An open dropdown list lies above the widgets below it, opaque (the Runs tab's Stages list over the Task box). */
ul.options {z-index: 1000 !important; background: var(--background-fill-primary) !important; opacity: 1 !important;}
/* A phone (390 px): the top bar's pickers take a line each, so a run's long label is not cut. */
@media (max-width: 640px) {
  #run-select, #student-select, #user-name, #hf-login {min-width: 100% !important; flex: 1 1 100% !important;}
  #run-select input {font-size: 13px;}
}
"""
RUN_POLL_S = 15


def launch_kwargs() -> dict:
    """`demo.launch(**launch_kwargs())`: the studio's look, and a login page that shows a visitor who has
    not logged in nothing of the app (ui/login_guard.py). A fresh dict per launch: Gradio writes into
    `app_kwargs`."""
    return dict(theme=gr.themes.Soft(primary_hue="indigo"), css=CSS,
                app_kwargs={"middleware": [Middleware(HideAppFromStrangers)]})


def build_app(store: Store, jobs: Any = None, read_only: bool = False, runs_dir: str | Path = "runs") -> gr.Blocks:
    """The whole studio as a gr.Blocks (launch it with **launch_kwargs())."""
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        ctx = _top_bar(tab_store(store), read_only, str(runs_dir))
        remember_reviewer(ctx, demo)  # outside the tabs: a hidden tab's components are not mounted yet
        with gr.Tabs(overflow_behavior="wrap", elem_id="arte-tabs"):  # on a phone every tab stays in sight
            with gr.Tab("Drafts", id="drafts"):
                build_drafts_tab(ctx, demo)
            with gr.Tab("Pairs", id="pairs"):
                build_pairs_tab(ctx, demo)
            with gr.Tab("Analysis", id="analysis") as analysis_tab:
                build_analysis_tab(ctx, analysis_tab)
            with gr.Tab("Signals", id="signals") as signals_tab:
                build_signals_tab(ctx, signals_tab)
            with gr.Tab("Health", id="health") as health_tab:
                build_health_tab(ctx, health_tab)
            with gr.Tab("Items", id="items") as items_tab:
                build_items_tab(ctx, items_tab)
            with gr.Tab("Study", id="study") as study_tab:
                build_study_tab(ctx, study_tab)
            with gr.Tab("Student zone (pilot)", id="pilot") as pilot_tab:
                build_pilot_tab(ctx, pilot_tab)
            with gr.Tab("Runs", id="runs"):
                _runs_tab(ctx, jobs)
            with gr.Tab("Export", id="export"):
                build_export_tab(ctx)
            with gr.Tab("Guide", id="guide"):
                build_guide_tab()
        _wire_top_bar(ctx, demo)
        wire_sandbox_cleanup(demo, ctx.store)
    return demo


def _top_bar(store: Store, read_only: bool, runs_dir: str) -> StudioContext:
    gr.Markdown(f"## {TITLE} — align a teacher's data with what the student learns from")
    if read_only:
        gr.Markdown(READ_ONLY_NOTICE, elem_classes=["arte-notice"], elem_id="read-only-notice")
    if on_a_space():
        gr.Markdown(guide_text.SPACE_WARNING, elem_classes=["arte-notice"], elem_id="space-warning")
    banner = guide_text.store_banner(store, on_a_space())
    if banner:
        gr.Markdown(banner, elem_classes=["arte-banner"], elem_id="demo-banner")
    run_id = common.default_run(store)
    students = common.student_choices(store, run_id)
    with gr.Row(equal_height=True):
        run = gr.Dropdown(common.run_choices(store), value=run_id, label="Run (run id (teacher → student))",
                          scale=4, elem_id="run-select", allow_custom_value=True,  # runs appear after launch
                          info=guide_text.term_info("run"))
        student = gr.Dropdown(students, value=students[0] if students else None, label="Student (scores shown)",
                              scale=2, elem_id="student-select", allow_custom_value=True,
                              info=guide_text.term_info("student"))
        user = gr.Textbox("anonymous", label="Your name (for the audit trail)", scale=2, elem_id="user-name")
        login_button()  # a Space with Hugging Face sign-in: the signed-in name replaces the typed one
        refresh = gr.Button("↻ Reload runs", scale=1, size="sm")
    summary = gr.Markdown(common.store_summary(store), elem_id="store-summary")
    return StudioContext(store=store, read_only=read_only, run=run, student=student, user=user, runs_dir=runs_dir,
                         refresh_button=refresh, summary=summary)


def _wire_top_bar(ctx: StudioContext, demo: gr.Blocks) -> None:
    def load(run_id: str | None, typed: str, request: gr.Request, profile: gr.OAuthProfile | None = None):
        """Fresh run choices (a job may have added runs), and the signed-in user's name."""
        choices = common.run_choices(ctx.store)
        known = {value for _, value in choices}
        run_id = run_id if run_id in known else common.default_run(ctx.store)
        username = signed_in_name(request, profile)
        user = gr.update(value=username, interactive=False, label="Signed in as") if username else gr.update()
        return gr.update(choices=choices, value=run_id), user, common.store_summary(ctx.store)

    def students(run_id: str | None, current: str | None):
        names = common.student_choices(ctx.store, run_id)
        return gr.update(choices=names, value=current if current in names else (names[0] if names else None))

    def poll(run_id: str | None):
        """New runs appear without a page reload (a finished job adds its run to the store)."""
        return gr.update(choices=common.run_choices(ctx.store)), common.store_summary(ctx.store)

    gr.on([demo.load, ctx.refresh_button.click], guarded(load), [ctx.run, ctx.user],
          [ctx.run, ctx.user, ctx.summary], api_name="studio_load")
    gr.Timer(RUN_POLL_S).tick(guarded(poll), ctx.run, [ctx.run, ctx.summary], api_name="studio_poll_runs",
                              show_progress="hidden")
    ctx.run.change(guarded(students), [ctx.run, ctx.student], ctx.student, api_name="studio_students")


def _runs_tab(ctx: StudioContext, jobs: Any) -> None:
    """The Runs tab from ui/runs.py (launch, watch, stop runs); a plain run list without a job manager."""
    if jobs is None:
        gr.Markdown("Launching runs is not available: the studio was started without a job manager. Runs in the store:")
        _fallback_runs_list(ctx)
        return
    build_runs_tab(jobs, runs_handlers.default_config(ctx.runs_dir), ctx.read_only, user=ctx.user)


def _fallback_runs_list(ctx: StudioContext) -> None:
    table = gr.Dataframe(label="Runs", interactive=False)
    button = gr.Button("Refresh")
    button.click(guarded(lambda: runs_handlers.runs_table(ctx.store)), None, table, api_name="runs_history")

"""The Runs tab's wiring: launch, follow, stop and relaunch studio jobs through the handlers in
arte_core.studio.runs. Before a launch the form says which run its config is (existing or NEW) and how long
each stage should take; the whole loop needs a confirmation. Everything shown is read from stored state
(the jobs table and the job folder) on a gr.Timer (PROGRESS_POLL_S), so a browser reload loses nothing.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd

from arte_core.config import RunConfig, field_help
from arte_core.errors import ArteError
from arte_core.jobs import JobManager
from arte_core.studio import runs as h
from arte_core.studio.guide import term_info
from arte_core.studio.launch_rules import allowed_models_text
from ui.common import selected_row_id

PROGRESS_POLL_S = 2  # how often the tab rereads the shown job's progress and the history
# Glossary entries a key field's tooltip adds to the field's own help.
FIELD_TERMS = {"teacher": ("teacher",), "student": ("student",), "elicit.n_questions": ("draft",),
               "align.learning_rate": ("DPO",), "pairs.signal": ("one-shot score", "influence"),
               "pairs.style": ("pair",)}


def _info(helps: dict, path: str) -> str | None:
    """A field's tooltip: its config help, then the glossary's words for the terms it uses."""
    parts = [helps.get(path) or "", term_info(*FIELD_TERMS.get(path, ()))] if path in FIELD_TERMS else [helps.get(path)]
    return " ".join(p for p in parts if p) or None


def _who(request: gr.Request | None, typed: str | None = None) -> str:
    return h.job_owner(getattr(request, "username", None), typed)


def _warn(exc: ArteError) -> str:
    gr.Warning(html.escape(str(exc)), title="Runs")
    return f"⚠️ {exc}"


def build_runs_tab(jobs: JobManager, default_config: RunConfig, read_only: bool,
                   user: gr.Textbox | None = None) -> dict[str, gr.components.Component]:
    """The Runs tab's widgets and listeners; call inside an open gr.Blocks (and gr.Tab) context.

    `user`: an optional textbox holding the user's name for the jobs' `who` (a signed-in user wins).
    Returns the main widgets by name, for apps that want to wire more to them."""
    off = h.launch_off_reason(read_only)
    form = _form(jobs, default_config, off)
    view = _view(jobs, off is not None)
    widgets = {**form, **view}
    _wire_form(jobs, form)
    _wire_actions(jobs, read_only, widgets, user)
    _wire_view(jobs, widgets)
    return widgets


def _form(jobs: JobManager, default_config: RunConfig, off: str | None) -> dict:
    helps = field_help()
    gr.Markdown("Launch the ARTE loop or one stage as a background job. It runs in its own process on a "
                "copy of the run's rows, which come back into the store when it ends (also when it fails "
                "or is stopped: a relaunch resumes where it stopped).")
    if off:
        gr.Markdown(f"🔒 {off}", elem_id="runs-read-only", elem_classes=["arte-notice"])
    else:
        gr.Markdown(allowed_models_text(), elem_id="runs-allowed-models")
    fields = []
    half = (len(h.KEY_FIELDS) + 1) // 2  # two rows of fields: each keeps room for its tooltip
    for row_fields in (h.KEY_FIELDS[:half], h.KEY_FIELDS[half:]):
        with gr.Row(elem_classes=["arte-runs-fields"]):
            fields += [_field(default_config, helps, path, label) for path, label in row_fields]
    with gr.Accordion("Effective config (YAML): every field of the run", open=False):
        config_yaml = gr.Code(default_config.to_yaml(), language="yaml", label="config.yaml", lines=18,
                              interactive=True, elem_id="runs-config")
    task_note = gr.Markdown(h.task_dir_note(default_config.task_dir), elem_id="runs-task-note")

    def runs_initial_plan():  # named: Gradio names the page-load endpoint of a callable value after it
        return _plan_texts(jobs, default_config.to_yaml(), h.DEFAULT_STAGE)[0]

    identity = gr.Markdown(runs_initial_plan, elem_id="runs-identity", elem_classes=["arte-notice"])
    with gr.Row(equal_height=True, elem_classes=["arte-runs-stage-row"]):
        stage = gr.Dropdown(h.STAGE_CHOICES, value=h.DEFAULT_STAGE, label="Stages", scale=2, elem_id="runs-stage",
                            info="One stage, or 'all' for the whole loop (it asks you to confirm its time first); "
                                 "stages already done in the store are skipped.")
        confirm_all = gr.Checkbox(False, label="Yes, run the whole loop", visible=False, scale=1,
                                  elem_id="runs-confirm-all")
        launch = gr.Button("Launch", variant="primary", interactive=off is None, elem_id="runs-launch")
        stop = gr.Button("Stop", variant="stop", interactive=off is None, elem_id="runs-stop")

    def runs_initial_estimate():
        return _plan_texts(jobs, default_config.to_yaml(), h.DEFAULT_STAGE)[1]

    estimate = gr.Markdown(runs_initial_estimate, elem_id="runs-estimate")
    status = gr.Markdown(off or "", elem_id="runs-status")
    return dict(fields=fields, config_yaml=config_yaml, stage=stage, launch=launch, stop=stop, status=status,
                identity=identity, estimate=estimate, confirm_all=confirm_all, task_note=task_note)


def _field(config: RunConfig, helps: dict, path: str, label: str) -> gr.components.Component:
    """One key field of the form: a list where the values are known, else a number or a text box."""
    value, info, elem_id = h.field_value(config, path), _info(helps, path), f"runs-field-{path}"
    if path == "task":
        return gr.Dropdown(h.task_choices(config.task_dir), value=value, label=label, info=info, elem_id=elem_id,
                           filterable=True)
    if path in ("teacher", "student"):  # installed models to pick from; any Hub id or folder may be typed
        return gr.Dropdown(h.model_choices(value), value=value, label=label, info=info, elem_id=elem_id,
                           allow_custom_value=True, filterable=True)
    if path == "task_dir":
        return gr.Textbox(value or "", label=label, info=info, elem_id=elem_id, placeholder="/path/to/BIG-Bench-Hard")
    if path in h.FIELD_CHOICES:
        return gr.Dropdown(h.FIELD_CHOICES[path], value=value, label=label, info=info, elem_id=elem_id)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        precision = 0 if isinstance(value, int) else None
        return gr.Number(value, label=label, info=info, precision=precision, step=1 if precision == 0 else 1e-7,
                         elem_id=elem_id)
    return gr.Textbox(value, label=label, info=info, elem_id=elem_id)


def _plan_texts(jobs: JobManager, yaml_text: str, stage: str | None) -> tuple[str, str, bool]:
    """(run identity, estimate, 'all' picked) for the form; a config that does not parse says so in place."""
    try:
        return h.launch_plan(jobs, yaml_text, stage)
    except ArteError as exc:
        return f"⚠️ {exc}", "", stage == "all"


def _view(jobs: JobManager, launch_off: bool) -> dict:
    with gr.Row(equal_height=True):
        job_id = gr.Textbox(label="Job shown (empty: the running or newest job; click a history row to pick one)",
                            scale=4, elem_id="runs-job-id")
        follow = gr.Button("Follow latest", scale=1, size="sm")
    # Callable values are evaluated on every page load: a reload shows the stored state at once.
    # Named functions: Gradio names the page-load endpoint of a callable value after it.
    def runs_initial_progress():
        return h.progress_view(jobs, None)[0]

    def runs_initial_history():
        return h.history_table(jobs)

    progress = gr.HTML(runs_initial_progress, elem_id="runs-progress-box")
    with gr.Row():
        log = gr.Textbox(label="Log (last lines)", lines=14, max_lines=14, interactive=False, autoscroll=True,
                         elem_id="runs-log", scale=3)
        loss = gr.Plot(label="Training loss", scale=2, elem_id="runs-loss")

    def runs_initial_dpo():
        return h.dpo_view(jobs, None)

    dpo = gr.Plot(runs_initial_dpo, elem_id="runs-dpo",
                  label="Teacher DPO of the shown job's run: loss, reward margin and reward accuracy by step")
    dpo_shown = gr.State("")  # dpo_key of the figure on screen: a tick redraws it only when that changes
    gr.Markdown("### History")
    history = gr.Dataframe(runs_initial_history, headers=h.HISTORY_COLUMNS, interactive=False, wrap=True,
                           max_height=360, elem_id="runs-history")
    relaunch = gr.Button("Relaunch the shown job (same config and stages)", interactive=not launch_off,
                         elem_id="runs-relaunch")
    timer = gr.Timer(PROGRESS_POLL_S)
    return dict(job_id=job_id, follow=follow, progress=progress, log=log, loss=loss, dpo=dpo, dpo_shown=dpo_shown,
                history=history, relaunch=relaunch, timer=timer)


def _wire_form(jobs: JobManager, form: dict) -> None:
    def to_yaml(yaml_text: str, *values: Any):
        try:
            return h.apply_fields(yaml_text, *values)
        except ArteError as exc:
            _warn(exc)
            return gr.skip()  # keep the user's text as it is

    def to_fields(yaml_text: str):
        try:
            return h.field_values(yaml_text)
        except ArteError as exc:
            _warn(exc)
            return [gr.skip()] * len(h.KEY_FIELDS)

    for field in form["fields"]:
        field.input(to_yaml, [form["config_yaml"], *form["fields"]], form["config_yaml"],
                    api_name=f"runs_field_{field.elem_id.removeprefix('runs-field-').replace('.', '_')}",
                    show_progress="hidden")
    form["config_yaml"].blur(to_fields, form["config_yaml"], form["fields"], api_name="runs_read_fields",
                             show_progress="hidden")

    def plan(yaml_text: str, stage: str):
        identity, estimate, whole_loop = _plan_texts(jobs, yaml_text, stage)
        return identity, estimate, gr.update(visible=whole_loop, value=False)

    # Every change of the config or the stage says anew which run it is and how long it takes.
    gr.on([form["config_yaml"].change, form["stage"].change], plan, [form["config_yaml"], form["stage"]],
          [form["identity"], form["estimate"], form["confirm_all"]], api_name="runs_plan", show_progress="hidden")
    paths = [path for path, _ in h.KEY_FIELDS]
    task_field, task_dir_field = (form["fields"][paths.index(name)] for name in ("task", "task_dir"))

    def tasks(task_dir: str, task: str):
        choices = h.task_choices(task_dir)
        return gr.update(choices=choices, value=task if task in choices else choices[0]), h.task_dir_note(task_dir)

    task_dir_field.change(tasks, [task_dir_field, task_field], [task_field, form["task_note"]], api_name="runs_tasks",
                          show_progress="hidden")


def _wire_actions(jobs: JobManager, read_only: bool, w: dict, user: gr.Textbox | None) -> None:
    user_inputs = [user] if user is not None else []

    def launch(yaml_text: str, stage: str, typed: str, confirmed: bool, request: gr.Request = None):
        try:
            row = h.launch_job(jobs, read_only, yaml_text, stage, _who(request, typed), confirmed_all=bool(confirmed))
        except ArteError as exc:
            return _warn(exc), gr.skip()
        return f"Launched job `{row['job_id']}` ({row['stages']}) for run `{row['run_id']}`.", row["job_id"]

    def stop(job_id: str, typed: str = "", request: gr.Request = None):
        try:
            row = h.stop_job(jobs, read_only, job_id, _who(request, typed))
        except ArteError as exc:
            return _warn(exc)
        return f"Stopped job `{row['job_id']}`; what it had committed is in the store."

    def relaunch(job_id: str, typed: str = "", request: gr.Request = None):
        try:
            row = h.relaunch_job(jobs, read_only, job_id, _who(request, typed))
        except ArteError as exc:
            return _warn(exc), gr.skip()
        return f"Relaunched as job `{row['job_id']}` ({row['stages']}).", row["job_id"]

    typed_name = user if user is not None else gr.State("")  # no name box: the job's who is 'studio'
    w["launch"].click(launch, [w["config_yaml"], w["stage"], typed_name, w["confirm_all"]],
                      [w["status"], w["job_id"]], api_name="runs_launch")
    w["stop"].click(stop, [w["job_id"], *user_inputs], w["status"], api_name="runs_stop")
    w["relaunch"].click(relaunch, [w["job_id"], *user_inputs], [w["status"], w["job_id"]], api_name="runs_relaunch")


def _wire_view(jobs: JobManager, w: dict) -> None:
    def pick(frame: pd.DataFrame, evt: gr.SelectData):
        return selected_row_id(frame, evt, "job")

    outputs = [w["progress"], w["log"], w["loss"]]
    w["timer"].tick(lambda job_id: h.progress_view(jobs, job_id), w["job_id"], outputs, api_name="runs_progress",
                    show_progress="hidden")
    w["timer"].tick(lambda: h.history_table(jobs), None, w["history"], api_name="runs_history", show_progress="hidden")
    w["history"].select(pick, w["history"], w["job_id"], api_name="runs_select_job")
    w["follow"].click(lambda: "", None, w["job_id"], api_name="runs_follow_latest")
    w["job_id"].submit(lambda job_id: h.progress_view(jobs, job_id), w["job_id"], outputs, api_name="runs_show_job")

    def dpo(job_id: str, shown: str):
        key = h.dpo_key(jobs, job_id)
        return (gr.skip(), gr.skip()) if key == shown else (h.dpo_view(jobs, job_id), key)

    w["timer"].tick(dpo, [w["job_id"], w["dpo_shown"]], [w["dpo"], w["dpo_shown"]], api_name="runs_dpo",
                    show_progress="hidden")
    w["job_id"].change(dpo, [w["job_id"], w["dpo_shown"]], [w["dpo"], w["dpo_shown"]], show_progress="hidden")

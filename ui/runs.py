"""The Runs tab: launch, follow, stop and relaunch studio jobs (arte_core.jobs).

The top-level functions are the handlers: plain Python over a JobManager, testable without a
browser. `build_runs_tab` only wires them to widgets. Everything shown is read from stored state
(the jobs table and the job folder) on a 2-second gr.Timer, so a browser reload loses nothing.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import yaml

from arte_core.config import PAIR_SIGNALS, PAIR_STYLES, RunConfig, config_from_dict, field_help
from arte_core.errors import ArteError
from arte_core.jobs import STAGE_ORDER, JobManager

STAGE_CHOICES = ["all", *STAGE_ORDER]
# The form's shortcut fields: (dotted config path, label). Each edit rewrites the YAML, which
# stays the one source of truth of what is launched.
KEY_FIELDS = [
    ("task", "Task"),
    ("teacher", "Teacher"),
    ("student", "Student"),
    ("elicit.n_questions", "Draft questions"),
    ("align.learning_rate", "DPO learning rate"),
    ("pairs.signal", "Pair signal"),
    ("pairs.style", "Pair style"),
]
# Key fields picked from a list rather than typed.
FIELD_CHOICES = {"pairs.signal": list(PAIR_SIGNALS), "pairs.style": list(PAIR_STYLES)}
READ_ONLY_REASON = ("Launching and stopping runs is disabled: this studio opened the store read-only "
                    "(another process owns it for writing). Start the studio as the store's owner to run jobs.")
HISTORY_COLUMNS = ["job", "run", "stages", "status", "who", "started", "finished", "message"]
STATUS_COLOURS = {"running": "#1e88e5", "done": "#2e7d32", "failed": "#c62828", "stopped": "#ef6c00"}


# -- config form --------------------------------------------------------------------------------


def parse_config(yaml_text: str) -> RunConfig:
    """The form's YAML as a RunConfig; ArteError names what is wrong."""
    try:
        data = yaml.safe_load(yaml_text or "")
    except yaml.YAMLError as exc:
        raise ArteError(f"the config is not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ArteError(f"the config must be a YAML mapping of fields, got {type(data).__name__}.")
    return config_from_dict(data or {})


def _get(config: RunConfig, path: str) -> Any:
    obj = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set(config: RunConfig, path: str, value: Any) -> None:
    *parents, name = path.split(".")
    obj = config
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, name, value)


def field_values(yaml_text: str) -> list[Any]:
    """The key fields' values in the YAML (ArteError when it does not parse)."""
    config = parse_config(yaml_text)
    return [_get(config, path) for path, _ in KEY_FIELDS]


def apply_fields(yaml_text: str, *values: Any) -> str:
    """The YAML with the key fields set to `values` (in KEY_FIELDS order), checked as a config."""
    data = parse_config(yaml_text).to_dict()
    for (path, _), value in zip(KEY_FIELDS, values):
        if value is None or value == "":
            continue
        section = data
        *parents, name = path.split(".")
        for part in parents:
            section = section[part]
        section[name] = value
    return config_from_dict(data).to_yaml()  # validates the new values too


# -- actions --------------------------------------------------------------------------------------


def _refuse_if_read_only(read_only: bool) -> None:
    if read_only:
        raise ArteError(READ_ONLY_REASON)


def launch_job(jobs: JobManager, read_only: bool, yaml_text: str, stage: str, who: str = "studio") -> dict:
    """Parse the form and launch; returns the new jobs row. ArteError (nothing launched) on any problem."""
    _refuse_if_read_only(read_only)
    config = parse_config(yaml_text)
    return jobs.launch(config, [stage or "all"], who=who or "studio")


def shown_job(jobs: JobManager, job_id: str | None) -> str | None:
    """The job the tab follows: the one picked, else the running one, else the newest."""
    if job_id:
        return job_id
    active = jobs.active()
    if active:
        return active["job_id"]
    history = jobs.jobs()
    return history[0]["job_id"] if history else None


def stop_job(jobs: JobManager, read_only: bool, job_id: str | None, who: str = "studio") -> dict:
    """Stop the picked job when it runs, else the running one."""
    _refuse_if_read_only(read_only)
    jobs.refresh()
    target = job_id if job_id and jobs.job(job_id)["status"] == "running" else None
    target = target or (jobs.active() or {}).get("job_id")
    if not target:
        raise ArteError("no job is running; nothing to stop.")
    return jobs.stop(target, who=who or "studio")


def relaunch_job(jobs: JobManager, read_only: bool, job_id: str | None, who: str = "studio") -> dict:
    """Launch the picked (else newest) job again with its config and stages; it resumes what is stored."""
    _refuse_if_read_only(read_only)
    target = shown_job(jobs, job_id)
    if not target:
        raise ArteError("no job to relaunch yet; launch one first.")
    return jobs.relaunch(target, who=who or "studio")


# -- views ----------------------------------------------------------------------------------------


def history_table(jobs: JobManager) -> pd.DataFrame:
    """Every job, newest first, as the history table shows it."""
    jobs.refresh()
    rows = [[r["job_id"], r["run_id"], r["stages"], r["status"], r["who"], _when(r["started_at"]),
             _when(r["finished_at"]), r["message"] or ""] for r in jobs.jobs()]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_html(progress: dict | None) -> str:
    """Status, current stage and a progress bar for one job."""
    if progress is None:
        return "<p>No job yet: fill in the config and press <b>Launch</b>.</p>"
    esc = html.escape
    colour = STATUS_COLOURS.get(progress["status"], "#555")
    stage = progress["bar_stage"] or progress["stage"] or "starting"
    count = f"{progress['done']}/{progress['total']}" if progress["total"] else ""
    message = f"<div>{esc(progress['message'])}</div>" if progress["message"] else ""
    return (
        f"<div id='runs-progress' data-status='{esc(progress['status'])}'>"
        f"<div><b>{esc(progress['job_id'])}</b> · run <code>{esc(progress['run_id'])}</code> · "
        f"<span style='color:{colour};font-weight:600'>{esc(progress['status'])}</span> · "
        f"{_duration(progress['elapsed_s'])} · stages {esc(', '.join(progress['stages']))}</div>"
        f"<div>{esc(stage)} {esc(count)}</div>"
        f"<div style='background:#e0e0e0;border-radius:4px;height:14px;width:100%'>"
        f"<div style='background:{colour};height:14px;border-radius:4px;width:{100 * progress['fraction']:.1f}%'>"
        f"</div></div>{message}</div>"
    )


def loss_figure(progress: dict | None) -> go.Figure:
    """The training loss of the job's latest training stage (empty until one logs a loss)."""
    fig = go.Figure()
    points = (progress or {}).get("loss") or []
    if points:
        steps, losses = zip(*points)
        fig.add_trace(go.Scatter(x=list(steps), y=list(losses), mode="lines+markers", name="loss"))
    title = f"loss · {progress['loss_stage']}" if points else "loss (appears when DPO or SFT trains)"
    fig.update_layout(title=title, xaxis=dict(title="step", tickformat="d"), yaxis_title="loss", height=300,
                      margin=dict(l=40, r=10, t=40, b=40))
    return fig


def progress_view(jobs: JobManager, job_id: str | None) -> tuple[str, str, go.Figure]:
    """(status HTML, log tail, loss figure) of the shown job, after finalising jobs that ended."""
    jobs.refresh()
    target = shown_job(jobs, job_id)
    try:
        progress = jobs.progress(target) if target else None
    except ArteError as exc:
        return f"<p>{html.escape(str(exc))}</p>", "", loss_figure(None)
    log = "\n".join(progress["log_tail"]) if progress else ""
    return progress_html(progress), log, loss_figure(progress)


# -- Gradio wiring --------------------------------------------------------------------------------


def _who(request: gr.Request | None, typed: str | None = None) -> str:
    return getattr(request, "username", None) or (typed or "").strip() or "studio"


def _warn(exc: ArteError) -> str:
    gr.Warning(html.escape(str(exc)), title="Runs")
    return f"⚠️ {exc}"


def build_runs_tab(jobs: JobManager, default_config: RunConfig, read_only: bool,
                   user: gr.Textbox | None = None) -> dict[str, gr.components.Component]:
    """The Runs tab's widgets and listeners; call inside an open gr.Blocks (and gr.Tab) context.

    `user`: an optional textbox holding the user's name for the jobs' `who` (a signed-in user wins).
    Returns the main widgets by name, for apps that want to wire more to them."""
    form = _form(default_config, read_only)
    view = _view(jobs, read_only)
    widgets = {**form, **view}
    _wire_form(form)
    _wire_actions(jobs, read_only, widgets, user)
    _wire_view(jobs, widgets)
    return widgets


def _form(default_config: RunConfig, read_only: bool) -> dict:
    helps = field_help()
    gr.Markdown("Launch the ARTE loop or one stage as a background job. It runs in its own process on a "
                "copy of the run's rows, which come back into the store when it ends (also when it fails "
                "or is stopped: a relaunch resumes where it stopped).")
    if read_only:
        gr.Markdown(f"🔒 {READ_ONLY_REASON}", elem_id="runs-read-only")
    with gr.Row():
        fields = []
        for path, label in KEY_FIELDS:
            value = _get(default_config, path)
            if path in FIELD_CHOICES:
                fields.append(gr.Dropdown(FIELD_CHOICES[path], value=value, label=label, info=helps.get(path),
                                          elem_id=f"runs-field-{path}"))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                precision = 0 if isinstance(value, int) else None
                fields.append(gr.Number(value, label=label, info=helps.get(path), precision=precision,
                                        step=1 if precision == 0 else 1e-7, elem_id=f"runs-field-{path}"))
            else:
                fields.append(gr.Textbox(value, label=label, info=helps.get(path), elem_id=f"runs-field-{path}"))
    with gr.Accordion("Effective config (YAML): every field of the run", open=False):
        config_yaml = gr.Code(default_config.to_yaml(), language="yaml", label="config.yaml", lines=18,
                              interactive=True, elem_id="runs-config")
    with gr.Row(equal_height=True):
        stage = gr.Dropdown(STAGE_CHOICES, value="all", label="Stages", scale=2, elem_id="runs-stage",
                            info="'all' runs the whole loop; stages already done in the store are skipped.")
        launch = gr.Button("Launch", variant="primary", interactive=not read_only, elem_id="runs-launch")
        stop = gr.Button("Stop", variant="stop", interactive=not read_only, elem_id="runs-stop")
    status = gr.Markdown(READ_ONLY_REASON if read_only else "", elem_id="runs-status")
    return dict(fields=fields, config_yaml=config_yaml, stage=stage, launch=launch, stop=stop, status=status)


def _view(jobs: JobManager, read_only: bool) -> dict:
    with gr.Row(equal_height=True):
        job_id = gr.Textbox(label="Job shown (empty: the running or newest job; click a history row to pick one)",
                            scale=4, elem_id="runs-job-id")
        follow = gr.Button("Follow latest", scale=1, size="sm")
    # Callable values are evaluated on every page load: a reload shows the stored state at once.
    # Named functions: Gradio names the page-load endpoint of a callable value after it.
    def runs_initial_progress():
        return progress_view(jobs, None)[0]

    def runs_initial_history():
        return history_table(jobs)

    progress = gr.HTML(runs_initial_progress, elem_id="runs-progress-box")
    with gr.Row():
        log = gr.Textbox(label="Log (last lines)", lines=14, max_lines=14, interactive=False, autoscroll=True,
                         elem_id="runs-log", scale=3)
        loss = gr.Plot(label="Training loss", scale=2, elem_id="runs-loss")
    gr.Markdown("### History")
    history = gr.Dataframe(runs_initial_history, headers=HISTORY_COLUMNS, interactive=False, wrap=True,
                           max_height=360, elem_id="runs-history")
    relaunch = gr.Button("Relaunch the shown job (same config and stages)", interactive=not read_only,
                         elem_id="runs-relaunch")
    timer = gr.Timer(2)
    return dict(job_id=job_id, follow=follow, progress=progress, log=log, loss=loss, history=history,
                relaunch=relaunch, timer=timer)


def _wire_form(form: dict) -> None:
    def to_yaml(yaml_text: str, *values: Any):
        try:
            return apply_fields(yaml_text, *values)
        except ArteError as exc:
            _warn(exc)
            return gr.skip()  # keep the user's text as it is

    def to_fields(yaml_text: str):
        try:
            return field_values(yaml_text)
        except ArteError as exc:
            _warn(exc)
            return [gr.skip()] * len(KEY_FIELDS)

    for field in form["fields"]:
        field.input(to_yaml, [form["config_yaml"], *form["fields"]], form["config_yaml"],
                    api_name=f"runs_field_{field.elem_id.removeprefix('runs-field-').replace('.', '_')}",
                    show_progress="hidden")
    form["config_yaml"].blur(to_fields, form["config_yaml"], form["fields"], api_name="runs_read_fields",
                             show_progress="hidden")


def _wire_actions(jobs: JobManager, read_only: bool, w: dict, user: gr.Textbox | None) -> None:
    user_inputs = [user] if user is not None else []

    def launch(yaml_text: str, stage: str, typed: str = "", request: gr.Request = None):
        try:
            row = launch_job(jobs, read_only, yaml_text, stage, _who(request, typed))
        except ArteError as exc:
            return _warn(exc), gr.skip()
        return f"Launched job `{row['job_id']}` ({row['stages']}) for run `{row['run_id']}`.", row["job_id"]

    def stop(job_id: str, typed: str = "", request: gr.Request = None):
        try:
            row = stop_job(jobs, read_only, job_id, _who(request, typed))
        except ArteError as exc:
            return _warn(exc)
        return f"Stopped job `{row['job_id']}`; what it had committed is in the store."

    def relaunch(job_id: str, typed: str = "", request: gr.Request = None):
        try:
            row = relaunch_job(jobs, read_only, job_id, _who(request, typed))
        except ArteError as exc:
            return _warn(exc), gr.skip()
        return f"Relaunched as job `{row['job_id']}` ({row['stages']}).", row["job_id"]

    w["launch"].click(launch, [w["config_yaml"], w["stage"], *user_inputs], [w["status"], w["job_id"]],
                      api_name="runs_launch")
    w["stop"].click(stop, [w["job_id"], *user_inputs], w["status"], api_name="runs_stop")
    w["relaunch"].click(relaunch, [w["job_id"], *user_inputs], [w["status"], w["job_id"]], api_name="runs_relaunch")


def _wire_view(jobs: JobManager, w: dict) -> None:
    def pick(frame: pd.DataFrame, evt: gr.SelectData):
        row = evt.row_value or frame.iloc[evt.index[0]].tolist()
        return str(row[0])

    outputs = [w["progress"], w["log"], w["loss"]]
    w["timer"].tick(lambda job_id: progress_view(jobs, job_id), w["job_id"], outputs, api_name="runs_progress",
                    show_progress="hidden")
    w["timer"].tick(lambda: history_table(jobs), None, w["history"], api_name="runs_history", show_progress="hidden")
    w["history"].select(pick, w["history"], w["job_id"], api_name="runs_select_job")
    w["follow"].click(lambda: "", None, w["job_id"], api_name="runs_follow_latest")
    w["job_id"].submit(lambda job_id: progress_view(jobs, job_id), w["job_id"], outputs, api_name="runs_show_job")

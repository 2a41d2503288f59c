"""The Runs tab's handlers: the launch form's config and task choices, what a launch will do (run_plan.py),
launching, stopping and relaunching jobs, the progress and history views and the shown run's teacher DPO, as
plain functions over a JobManager (no Gradio). Messages and logs are worded for the page: a stage's CLI hint
("run `arte score` first") names the stage to pick instead, and temporary paths are left out."""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import yaml

from arte_core.config import PAIR_SIGNALS, PAIR_STYLES, RunConfig, config_from_dict, demo_config_path, load_config
from arte_core.errors import ArteError
from arte_core.jobs import JobManager
from arte_core.models.registry import is_installed, registry_names
from arte_core.stages.registry import STAGES
from arte_core.store import Store, catalog
from arte_core.store.health import teacher_training_log
from arte_core.studio.common import table_ready
from arte_core.studio import run_plan
from arte_core.studio.launch_rules import check_launch_allowed, runs_off_reason
from arte_core.tasks import builtin_task_names, list_task_names
from arte_core.studio.plots import dpo_figure, empty_figure

STAGE_CHOICES = ["all", *STAGES]  # 'all' = what `arte run` runs; one stage alone, optional ones included
DEFAULT_STAGE = next(iter(STAGES))  # one stage, not the whole loop: 'all' takes its confirmation
# The form's shortcut fields: (dotted config path, label). Each edit rewrites the YAML, which
# stays the one source of truth of what is launched.
KEY_FIELDS = [
    ("task", "Task"),
    ("task_dir", "Task folder (BBH layout; empty: built-in tasks only)"),
    ("teacher", "Teacher"),
    ("student", "Student"),
    ("elicit.n_questions", "Draft questions"),
    ("align.learning_rate", "DPO learning rate"),
    ("pairs.signal", "Pair signal"),
    ("pairs.style", "Pair style"),
]
# Key fields picked from a list rather than typed.
FIELD_CHOICES = {"pairs.signal": list(PAIR_SIGNALS), "pairs.style": list(PAIR_STYLES)}
OPTIONAL_TEXT_FIELDS = ("task_dir",)  # an emptied box clears these (None); other empty boxes keep the YAML's value
READ_ONLY_REASON = ("Launching and stopping runs is disabled: this studio is read-only (started with "
                    "--read-only or ARTE_READ_ONLY). Start it without them to run jobs.")
HISTORY_COLUMNS = ["job", "run", "stages", "status", "who", "started", "finished", "message"]
STATUS_COLOURS = {"running": "#1e88e5", "done": "#2e7d32", "failed": "#c62828", "stopped": "#ef6c00"}


# -- config form --------------------------------------------------------------------------------


def default_config(runs_dir: str) -> RunConfig:
    """The demo config as the starting point of the launch form, writing into the studio's runs folder."""
    path = demo_config_path()
    config = load_config(path) if path.is_file() else RunConfig()
    config.runs_dir = runs_dir
    return config


def parse_config(yaml_text: str) -> RunConfig:
    """The form's YAML as a RunConfig; ArteError names what is wrong. An empty form (nothing but blanks
    or comments) is the demo config, as `arte run` without --config is: never the built-in full-size
    defaults (250 questions, n_test 200), which take hours."""
    try:
        data = yaml.safe_load(yaml_text or "")
    except yaml.YAMLError as exc:
        raise ArteError(f"the config is not valid YAML: {exc}") from None
    if data is None:
        return load_config(demo_config_path())
    if not isinstance(data, dict):
        raise ArteError(f"the config must be a YAML mapping of fields, got {type(data).__name__}.")
    return config_from_dict(data)


def field_value(config: RunConfig, path: str) -> Any:
    """A config value by its dotted path, e.g. 'pairs.signal'."""
    obj = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def field_values(yaml_text: str) -> list[Any]:
    """The key fields' values in the YAML (ArteError when it does not parse)."""
    config = parse_config(yaml_text)
    return [field_value(config, path) for path, _ in KEY_FIELDS]


def apply_fields(yaml_text: str, *values: Any) -> str:
    """The YAML with the key fields set to `values` (in KEY_FIELDS order), checked as a config."""
    data = parse_config(yaml_text).to_dict()
    for (path, _), value in zip(KEY_FIELDS, values):
        if path in OPTIONAL_TEXT_FIELDS and isinstance(value, str):
            value = value.strip() or None
        elif value is None or value == "":
            continue
        section = data
        *parents, name = path.split(".")
        for part in parents:
            section = section[part]
        section[name] = value
    return config_from_dict(data).to_yaml()  # validates the new values too


def model_choices(current: str | None = None) -> list[str]:
    """The registry's models installed here (the second student appears once its extra is installed), then the
    config's own model when it is another one (a Hub id or a folder, typed in the box)."""
    names = [name for name in registry_names() if is_installed(name)]
    return names + ([current] if current and current not in names else [])


def task_choices(task_dir: str | None) -> list[str]:
    """The built-in tasks, then the BBH-layout tasks (tasks/NAME.json + cot-prompts/NAME.txt) in `task_dir`."""
    names = builtin_task_names()
    folder = Path(task_dir).expanduser() if task_dir and str(task_dir).strip() else None
    if folder is not None and folder.is_dir():
        names += [name for name in list_task_names(folder) if name not in names]
    return names


def task_dir_note(task_dir: str | None) -> str:
    """What the task folder box holds, in words ('' when it is empty or holds tasks)."""
    if not task_dir or not str(task_dir).strip():
        return ""
    folder = Path(task_dir).expanduser()
    if not folder.is_dir():
        return f"⚠️ There is no folder {task_dir} on the server: the Task list shows the built-in tasks only."
    if not list_task_names(folder):
        return (f"⚠️ {task_dir} holds no task in the BBH layout (tasks/NAME.json with cot-prompts/NAME.txt): the "
                "Task list shows the built-in tasks only.")
    return ""


def launch_plan(jobs: JobManager, yaml_text: str, stage: str | None) -> tuple[str, str, bool]:
    """(which run the form's config is, the expected time of each stage, whether 'all' needs confirming):
    what the form shows before anything is launched. ArteError when the config does not parse."""
    config = parse_config(yaml_text)
    identity = run_plan.run_identity(jobs.store, config)
    estimates = run_plan.estimate(jobs, config, stage)
    return identity["text"], run_plan.estimate_markdown(estimates), stage in (None, "", "all")


# -- actions --------------------------------------------------------------------------------------


def job_owner(authenticated: str | None, typed: str | None = None) -> str:
    """Who a job is recorded for: the signed-in user, else the typed name, else 'studio'."""
    return authenticated or (typed or "").strip() or "studio"


def _refuse_if_read_only(read_only: bool) -> None:
    if read_only:
        raise ArteError(READ_ONLY_REASON)
    off = runs_off_reason()
    if off:
        raise ArteError(off)


def launch_off_reason(read_only: bool) -> str | None:
    """Why this studio launches nothing (read-only, or a Space that does not allow it), else None."""
    return READ_ONLY_REASON if read_only else runs_off_reason()


def launch_job(jobs: JobManager, read_only: bool, yaml_text: str, stage: str, who: str = "studio",
               confirmed_all: bool = False) -> dict:
    """Parse the form and launch; returns the new jobs row. ArteError (nothing launched) on any problem,
    also for models or model code the server's owner does not allow (launch_rules), and for the whole
    loop ('all') until its expected time was confirmed."""
    _refuse_if_read_only(read_only)
    config = parse_config(yaml_text)
    check_launch_allowed(config)
    run_plan.check_all_confirmed(stage, confirmed_all, run_plan.estimate(jobs, config, stage))
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
    check_launch_allowed(parse_config(jobs.job(target)["config_yaml"]))  # the rules may have changed since
    return jobs.relaunch(target, who=who or "studio")


# -- views ----------------------------------------------------------------------------------------


def history_table(jobs: JobManager) -> pd.DataFrame:
    """Every job, newest first, as the history table shows it."""
    jobs.refresh()
    rows = [[r["job_id"], r["run_id"], r["stages"], r["status"], r["who"], _when(r["started_at"]),
             _when(r["finished_at"]), page_message(r["message"] or "")] for r in jobs.jobs()]
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
    message = f"<div>{esc(page_message(progress['message']))}</div>" if progress["message"] else ""
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
    """The training loss of the job's latest training stage; a message, not empty axes, until one logs a loss."""
    points = (progress or {}).get("loss") or []
    if not points:
        return empty_figure("No training loss yet:<br>it appears while the align (DPO)<br>or distill (SFT) "
                            "stage trains.")
    fig = go.Figure()
    steps, losses = zip(*points)
    fig.add_trace(go.Scatter(x=list(steps), y=list(losses), mode="lines+markers", name="loss"))
    title = f"loss · {progress['loss_stage']}"
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
    log = "\n".join(page_log(progress["log_tail"], jobs.runs_dir)) if progress else ""
    return progress_html(progress), log, loss_figure(progress)


def run_dpo_figure(store: Store, run_id: str, student: str | None = None) -> go.Figure:
    """Loss, reward margin and reward accuracy by step of the teacher aligned to `student` (None: the
    run's own student)."""
    metrics, logs = teacher_training_log(store, run_id, student)
    if metrics is None:
        whose = f" (for student {student})" if student else ""
        return empty_figure(f"run '{run_id}' has no aligned teacher yet{whose}: its DPO appears after the align stage")
    fig = dpo_figure(logs, metrics)
    if student:
        fig.update_layout(title=dict(text=f"{fig.layout.title.text or 'Teacher DPO'} · aligned to {student}"))
    return fig


def job_student(job: dict) -> str | None:
    """The student a job ran for (its config's), None when its config does not say."""
    try:
        data = yaml.safe_load(job.get("config_yaml") or "") or {}
    except yaml.YAMLError:
        return None
    return data.get("student") if isinstance(data, dict) else None


def dpo_key(jobs: JobManager, job_id: str | None) -> str:
    """What the DPO figure of the shown job depends on (its run, its student and when the adapter aligned
    to that student was stored): the tab redraws the figure only when this changes."""
    target = shown_job(jobs, job_id)
    if not target:
        return ""
    try:
        job = jobs.job(target)
    except ArteError:
        return f"unknown job {target}"
    student = job_student(job)
    artifact = jobs.store.artifact(job["run_id"], "teacher_adapter", student)
    return f"{job['run_id']}|{student}|{artifact['created_at'] if artifact else ''}"


def dpo_view(jobs: JobManager, job_id: str | None) -> go.Figure:
    """The DPO of the teacher aligned to the shown job's student, in the job's run."""
    target = shown_job(jobs, job_id)
    if not target:
        return empty_figure("no job yet: the teacher's DPO appears after the align stage")
    try:
        job = jobs.job(target)
        return run_dpo_figure(jobs.store, job["run_id"], job_student(job))
    except ArteError as exc:
        return empty_figure(str(exc))


def runs_table(store: Store) -> pd.DataFrame:
    """Every run in the store with how far it got (the tab's view without a job manager)."""
    return table_ready(catalog.list_runs(store))


# -- words for the page ---------------------------------------------------------------------------

_CLI_STAGE = re.compile(r"(run |with )?`arte ([a-z]+)[^`]*`( first)?")
_ERROR_PREFIX = re.compile(r"^(?:arte: )?error: ", re.I)


def _stage_hint(match: re.Match) -> str:
    """A CLI hint as the page says it: "run `arte score` first" → "launch the score stage first (Stages:
    score, then Launch)"; "with `arte rescore`" → "with the rescore stage (…)"."""
    verb, name, first = match.group(1) or "", match.group(2), match.group(3) or ""
    if name == "run":
        return f"{verb if verb == 'with ' else ''}the whole loop (Stages: all, then Launch)"
    if name not in STAGES:
        return f"{verb}the {name} command of the `arte` tool{first}"
    if verb == "with ":
        return f"with the {name} stage (Stages: {name}, then Launch){first}"
    return f"launch the {name} stage{first} (Stages: {name}, then Launch)"


def page_message(text: str) -> str:
    """A stage's message as the page words it: a CLI hint ("run `arte score` first") names the stage to
    launch from this tab instead; the CLI's "arte: error:" prefix goes."""
    return _CLI_STAGE.sub(_stage_hint, _ERROR_PREFIX.sub("", text or ""))


def page_log(lines: list[str], runs_dir: str | Path) -> list[str]:
    """Log lines without the server's temporary and job folders: a path inside them shows as …/NAME."""
    roots = sorted({str(Path(runs_dir).resolve()), str(Path(runs_dir)), str(Path(tempfile.gettempdir()).resolve()),
                    tempfile.gettempdir(), "/tmp"}, key=len, reverse=True)
    pattern = re.compile("(?:" + "|".join(re.escape(r.rstrip("/")) for r in roots) + r")/[^\s'\"]*")
    return [pattern.sub(lambda m: "…/" + Path(m.group(0)).name, _CLI_STAGE.sub(_stage_hint, line)) for line in lines]

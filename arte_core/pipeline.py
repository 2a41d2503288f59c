"""Runs stages the way the registry describes them: a stage already done is skipped, its inputs are
checked before it starts, and it is marked done only when every output it declares holds rows.
Rerunning the same command after a kill continues where it stopped."""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable

from arte_core.config import RunConfig
from arte_core.context import RunContext, open_run
from arte_core.errors import ArteError
from arte_core.progress import Reporter
from arte_core.stages.registry import RUN_ORDER, STAGES, Rows, Stage, producer
from arte_core.store import Store


def stage_function(name: str) -> Callable[[RunContext, str], Any]:
    module, _, function = STAGES[name].function.partition(":")
    return getattr(importlib.import_module(module), function)


def _scope(stage: Stage, student: str) -> str:
    return student if stage.per_student else ""


def is_current(ctx: RunContext, stage: Stage, student: str) -> bool:
    """Done, and done with the settings the config asks for now."""
    info = ctx.store.stage_info(ctx.run_id, stage.name, _scope(stage, student))
    if info is None:
        return False
    wanted = stage.settings(ctx.config) if stage.settings else {}
    return all(info.get(key) == value for key, value in wanted.items())


def count(ctx: RunContext, rows: Rows, student: str) -> int:
    return ctx.store.count_rows(rows.table, ctx.run_id, student, **dict(rows.where))


def check_inputs(ctx: RunContext, stage: Stage, student: str) -> None:
    """Refuse to start a stage whose inputs are empty, naming the command that makes them."""
    for rows in stage.reads:
        if count(ctx, rows, student):
            continue
        maker = producer(rows)
        for_student = f" for student '{student}'" if maker and STAGES[maker].per_student else ""
        fix = (f"run `arte {maker}`{for_student} first" if maker
               else "the run's task gave no items for it; check the task and the split sizes")
        raise ArteError(f"`arte {stage.name}` needs {rows} rows in run '{ctx.run_id}'{for_student} and there are "
                        f"none: {fix}. Nothing was marked done.")


def check_outputs(ctx: RunContext, stage: Stage, student: str) -> None:
    """A stage that wrote nothing is never marked done."""
    empty = [str(rows) for rows in stage.writes if not count(ctx, rows, student)]
    if empty:
        raise ArteError(f"`arte {stage.name}` finished without writing {', '.join(empty)} for run '{ctx.run_id}'; "
                        "it is not marked done. Check the log above for why, then rerun the same command.")


def run_stage(ctx: RunContext, name: str, student: str | None = None) -> Any:
    """Run one stage for `student` (default: the config's) unless it is already done; returns what the
    stage returned, or None when it was skipped."""
    stage = STAGES[name]
    student = student or ctx.config.student
    if is_current(ctx, stage, student):
        return None
    check_inputs(ctx, stage, student)
    result = stage_function(name)(ctx, student)
    check_outputs(ctx, stage, student)
    info = dict(stage.settings(ctx.config)) if stage.settings else {}
    if isinstance(result, dict):
        info.update(result)
    ctx.store.mark_done(ctx.run_id, name, _scope(stage, student), info, ran_with(ctx.config, stage))
    return result


# Top-level settings that may change between calls on one run (the others fix the run's identity).
CALL_SETTINGS = ("backend", "trust_remote_code", "runs_dir")


def ran_with(config: RunConfig, stage: Stage) -> dict:
    """What a stage ran with: the call's top-level settings and the config sections the stage uses."""
    values = config.to_dict()
    return {**{key: values[key] for key in CALL_SETTINGS}, **{section: values[section] for section in stage.sections}}


def run_stages(config: RunConfig, store: Store, stages: list[str] | None = None,
               reporter: Reporter | None = None) -> RunContext:
    """Run the given stages (default: `arte run`'s, in order) of the run that `config` describes."""
    ctx = open_run(config, store, reporter)
    for name in stages or RUN_ORDER:
        started = time.time()
        ctx.reporter.emit(stage_started=name)
        run_stage(ctx, name)
        ctx.reporter.emit(stage_finished=name, seconds=round(time.time() - started, 1))
    ctx.models.clear()
    return ctx


def run_status(store: Store, run_id: str | None = None) -> dict[str, dict]:
    """Per run: its task and models, the stages done (with their student where they have one) and the
    rows every stage declares it writes."""
    runs = [store.run(run_id)] if run_id else store.list_runs()
    out = {}
    for run in runs:
        rid = run["run_id"]
        rows = {str(r): store.count_rows(r.table, rid, None, **dict(r.where))
                for stage in STAGES.values() for r in stage.writes}
        out[rid] = {"task": run["task"], "teacher": run["teacher"], "student": run["student"], **rows,
                    "stages_done": store.stages_done(rid)}
    return out

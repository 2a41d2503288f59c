"""Which stages a job runs, and the `arte` commands its child issues for them (from the stage registry)."""

from __future__ import annotations

from pathlib import Path

from arte_core.errors import ArteError
from arte_core.stages.registry import RUN_ORDER, STAGES

RUN_ALIASES = ("all", "run")  # the whole loop: what `arte run` runs


def normalise_stages(stages: list[str] | str) -> list[str]:
    """Stage names in registry order; 'all' or 'run' stands for every stage of `arte run` (RUN_ORDER).
    An optional stage (influence) runs only when named, also next to 'all'."""
    names = [stages] if isinstance(stages, str) else list(stages)
    unknown = [n for n in names if n not in STAGES and n not in RUN_ALIASES]
    if unknown:
        raise ArteError(f"unknown stage {', '.join(unknown)}; choose from all, {', '.join(STAGES)}.")
    wanted = set(names)
    if not names or wanted & set(RUN_ALIASES):
        wanted |= set(RUN_ORDER)
    return [name for name in STAGES if name in wanted]


def stage_commands(job_dir: str | Path, spec: dict) -> list[list[str]]:
    """The CLI argument lists of a job: one `arte run` when its stages are exactly RUN_ORDER (one
    process loads the task once and runs the loop), else one `arte STAGE` per stage in registry order
    (so an optional stage, e.g. influence, runs after score and before the pairs built from it)."""
    job_dir = Path(job_dir)
    stages = list(spec["stages"])
    commands = [["run"]] if stages == RUN_ORDER else [[stage] for stage in normalise_stages(stages)]
    common = ["--config", str(job_dir / "config.yaml"), "--db", str(job_dir / "job.duckdb"),
              "--events", str(job_dir / "events.jsonl"), "--quiet", "--run-name", spec["run_id"],
              "--runs-dir", spec["runs_dir"]]
    return [command + common for command in commands]

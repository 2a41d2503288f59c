"""The whole ARTE loop, headless: each stage skips what the store already holds, so rerunning
the same command after a kill continues where it stopped."""

from __future__ import annotations

import importlib
import time
from typing import Callable

from arte_core.config import RunConfig
from arte_core.context import RunContext, open_run
from arte_core.progress import Reporter
from arte_core.store import Store

# Stage name -> "module:function". Imported on use: a `pairs` job need not import TRL and peft.
STAGES: dict[str, str] = {
    "elicit": "arte_core.elicit:run_elicit",
    "score": "arte_core.preferences.icl:run_score",
    "pairs": "arte_core.pairs:run_pairs",
    "align": "arte_core.align:run_align",
    "regenerate": "arte_core.distill:run_regenerate",
    "distill": "arte_core.distill:run_distill",
    "evaluate": "arte_core.evaluate:run_evaluate",
}
# Stages that run only when asked for by name (not part of `arte run`).
EXTRA_STAGES: dict[str, str] = {
    "influence": "arte_core.preferences.influence:run_influence",
}
# Every stage in the order a job runs them (influence feeds pairs built from that signal).
STAGE_ORDER = ["elicit", "score", "influence", "pairs", "align", "regenerate", "distill", "evaluate"]


def stage_function(name: str) -> Callable[[RunContext], object]:
    module, _, function = {**STAGES, **EXTRA_STAGES}[name].partition(":")
    return getattr(importlib.import_module(module), function)


def run_stages(config: RunConfig, store: Store, stages: list[str] | None = None,
               reporter: Reporter | None = None) -> RunContext:
    """Run the given stages (default: all, in order) of the run that `config` describes."""
    ctx = open_run(config, store, reporter)
    for name in stages or list(STAGES):
        started = time.time()
        ctx.reporter.emit(stage_started=name)
        stage_function(name)(ctx)
        ctx.reporter.emit(stage_finished=name, seconds=round(time.time() - started, 1))
    ctx.models.clear()
    return ctx

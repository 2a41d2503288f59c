"""The whole ARTE loop, headless: each stage skips what the store already holds, so rerunning
the same command after a kill continues where it stopped."""

from __future__ import annotations

import importlib
import time
from typing import Callable

from arte_core.config import RunConfig
from arte_core.context import RunContext, open_run
from arte_core.progress import Reporter
from arte_core.stages.registry import RUN_ORDER, STAGES
from arte_core.store import Store

def stage_function(name: str) -> Callable[[RunContext], object]:
    module, _, function = STAGES[name].function.partition(":")
    return getattr(importlib.import_module(module), function)


def run_stages(config: RunConfig, store: Store, stages: list[str] | None = None,
               reporter: Reporter | None = None) -> RunContext:
    """Run the given stages (default: all, in order) of the run that `config` describes."""
    ctx = open_run(config, store, reporter)
    for name in stages or RUN_ORDER:
        started = time.time()
        ctx.reporter.emit(stage_started=name)
        stage_function(name)(ctx)
        ctx.reporter.emit(stage_finished=name, seconds=round(time.time() - started, 1))
    ctx.models.clear()
    return ctx

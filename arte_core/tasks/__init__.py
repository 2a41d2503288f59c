"""Tasks: built-in generated tasks with exact solvers, and loaders for BBH-layout folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from arte_core.errors import ArteError
from arte_core.tasks.answers import AnswerFormat, extract_answer, normalise
from arte_core.tasks.base import Example, Exemplar, Task
from arte_core.tasks.bbh import list_task_names, load_bbh_task

if TYPE_CHECKING:
    from arte_core.config.run import RunConfig

__all__ = [
    "AnswerFormat", "Example", "Exemplar", "Task", "extract_answer", "normalise",
    "load_task", "split_items_needed", "builtin_task_names", "load_bbh_task", "list_task_names",
]


def builtin_task_names() -> list[str]:
    from arte_core.tasks.builtin import BUILTIN_TASKS

    return sorted(BUILTIN_TASKS)


def load_task(name: str, task_dir: str | Path | None = None, seed: int = 0, difficulty: int = 0,
              min_examples: int = 0) -> Task:
    """A task by name: from `task_dir` (BBH layout, its whole held-out split) when given, else a built-in
    generated task at `difficulty` (0 = its default level) whose pool fits `min_examples` split items."""
    if task_dir:
        if difficulty:
            raise ArteError(f"task_difficulty ({difficulty}) applies to built-in tasks only; a BBH folder's "
                            "questions are as written. Set task_difficulty to 0 or leave out task_dir.")
        return load_bbh_task(task_dir, name)
    from arte_core.tasks.builtin import BUILTIN_TASKS

    if name not in BUILTIN_TASKS:
        raise ArteError(
            f"unknown task '{name}'. Built-in tasks: {', '.join(sorted(BUILTIN_TASKS))}; "
            "for another task pass --task-dir with a folder in the BBH layout."
        )
    return BUILTIN_TASKS[name](seed, difficulty, min_examples)


def split_items_needed(config: RunConfig) -> int:
    """Labelled examples a run's splits take: its preference items (the 'irt' candidates) plus its test items.
    A built-in pool grows to fit them (plus a margin); a BBH folder has what it has."""
    from arte_core.config.run import candidate_count

    preference = candidate_count(config.score) if config.score.selection == "irt" else config.score.n_pref
    return preference + config.eval.n_test

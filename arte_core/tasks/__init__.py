"""Tasks: built-in generated tasks with exact solvers, and loaders for BBH-layout folders."""

from __future__ import annotations

from pathlib import Path

from arte_core.errors import ArteError
from arte_core.tasks.answers import AnswerFormat, extract_answer, normalise
from arte_core.tasks.base import Example, Exemplar, Task
from arte_core.tasks.bbh import list_task_names, load_bbh_task

__all__ = [
    "AnswerFormat", "Example", "Exemplar", "Task", "extract_answer", "normalise",
    "load_task", "builtin_task_names", "load_bbh_task", "list_task_names",
]


def builtin_task_names() -> list[str]:
    from arte_core.tasks.builtin import BUILTIN_TASKS

    return sorted(BUILTIN_TASKS)


def load_task(name: str, task_dir: str | Path | None = None, seed: int = 0) -> Task:
    """A task by name: from `task_dir` (BBH layout) when given, else a built-in generated task."""
    if task_dir:
        return load_bbh_task(task_dir, name)
    from arte_core.tasks.builtin import BUILTIN_TASKS

    if name not in BUILTIN_TASKS:
        raise ArteError(
            f"unknown task '{name}'. Built-in tasks: {', '.join(sorted(BUILTIN_TASKS))}; "
            "for another task pass --task-dir with a folder in the BBH layout."
        )
    return BUILTIN_TASKS[name](seed)

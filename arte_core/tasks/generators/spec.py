"""TaskSpec: what one built-in task module declares so `builtin.py` can build its Task."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from arte_core.errors import ArteError
from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task before its examples are drawn.

    `solve` maps a BBH-format question to its exact target (None when it cannot parse it);
    `generate_question(rng, level)` draws one random question in that format from `rng` at a difficulty
    level of `levels`. `default_level` is the task as it always was (BBH's shape): equal seeds give the
    same questions there as before levels existed. `level_meaning` says in a few words what a level counts.
    """

    name: str
    description: str
    answer_format: AnswerFormat
    exemplars: tuple[Exemplar, ...]
    expert_procedure: str
    common_sense: str
    solve: Callable[[str], str | None]
    generate_question: Callable[[random.Random, int], str]
    levels: range
    default_level: int
    level_meaning: str

    def check_level(self, level: int) -> None:
        """Refuse a level outside `levels`, naming the ones there are."""
        if level not in self.levels:
            raise ArteError(
                f"task '{self.name}' has difficulty levels {self.levels.start}-{self.levels.stop - 1} "
                f"({self.level_meaning}; default {self.default_level}); got {level}. Set task_difficulty to one "
                "of them, or 0 for the default."
            )

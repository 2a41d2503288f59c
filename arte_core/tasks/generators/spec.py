"""TaskSpec: what one built-in task module declares so `builtin.py` can build its Task."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task before its examples are drawn.

    `solve` maps a BBH-format question to its exact target (None when it cannot parse it);
    `generate_question` draws one random question in that format from `rng`.
    """

    name: str
    description: str
    answer_format: AnswerFormat
    exemplars: tuple[Exemplar, ...]
    expert_procedure: str
    common_sense: str
    solve: Callable[[str], str | None]
    generate_question: Callable[[random.Random], str]

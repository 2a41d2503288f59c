"""Built-in tasks: BBH-format questions generated from a seed and labelled by exact solvers.

`BUILTIN_TASKS` maps a task name to a factory: `BUILTIN_TASKS[name](seed, difficulty, min_examples)`
returns a Task with our own three seed exemplars and at least 300 distinct generated examples (more
when `min_examples` asks for more), identical for equal arguments. Each task has difficulty levels
(its spec's `levels`); difficulty 0 is its default level, the questions as they were before levels.
A larger pool starts with the same questions as a smaller one of the same seed and level.
"""

from __future__ import annotations

import random
from typing import Callable

from arte_core.errors import ArteError
from arte_core.tasks.base import Example, Task
from arte_core.tasks.generators import (
    boolean_expressions,
    dyck_languages,
    multistep_arithmetic_two,
    navigate,
    object_counting,
    web_of_lies,
    word_sorting,
)
from arte_core.tasks.generators.spec import TaskSpec

N_EXAMPLES = 300  # the smallest pool; stored runs were split from pools of exactly this many
POOL_MARGIN = 50  # examples beyond what a run's splits need, so a split never runs short by a few
_MAX_DRAWS_PER_EXAMPLE = 50  # generous at the default levels; a level with a small question space stops here

SPECS: tuple[TaskSpec, ...] = (
    boolean_expressions.SPEC,
    multistep_arithmetic_two.SPEC,
    word_sorting.SPEC,
    object_counting.SPEC,
    dyck_languages.SPEC,
    navigate.SPEC,
    web_of_lies.SPEC,
)
SPEC_OF: dict[str, TaskSpec] = {spec.name: spec for spec in SPECS}


def resolved_level(spec: TaskSpec, difficulty: int) -> int:
    """The level `difficulty` stands for: 0 is the task's default level; others must be among its levels."""
    level = difficulty or spec.default_level
    spec.check_level(level)
    return level


def pool_size(min_examples: int) -> int:
    """Examples a built-in pool draws: N_EXAMPLES, or `min_examples` plus POOL_MARGIN when that is more."""
    return max(N_EXAMPLES, min_examples + POOL_MARGIN) if min_examples > 0 else N_EXAMPLES


def build_task(spec: TaskSpec, seed: int, difficulty: int = 0, min_examples: int = 0, n_examples: int = 0) -> Task:
    """The Task of `spec` at `difficulty` (0 = default level) with `pool_size(min_examples)` examples drawn
    from `random.Random(seed)`, or exactly `n_examples` when given (a pilot's sample of a level whose
    question space is too small for a run's pool); either way the first examples of a seed are the same."""
    level = resolved_level(spec, difficulty)
    return Task(
        name=spec.name,
        description=spec.description,
        exemplars=list(spec.exemplars),
        examples=generate_examples(spec, seed, n_examples or pool_size(min_examples), level),
        answer_format=spec.answer_format,
        solver=spec.solve,
        source="builtin" if level == spec.default_level else f"builtin, difficulty level {level}",
        extra={"techniques": {"expert_procedure": spec.expert_procedure, "common_sense": spec.common_sense},
               "difficulty_level": level},
    )


def generate_examples(spec: TaskSpec, seed: int, count: int, level: int | None = None) -> list[Example]:
    """`count` distinct questions (none equal to a seed exemplar) at `level` (None = the default level),
    labelled by the spec's solver. A level whose question space is too small for `count` is refused."""
    level = spec.default_level if level is None else level
    rng = random.Random(seed)
    taken = {exemplar.input for exemplar in spec.exemplars}
    examples: list[Example] = []
    draws_left = count * _MAX_DRAWS_PER_EXAMPLE
    while len(examples) < count:
        if draws_left == 0:
            raise ArteError(
                f"task '{spec.name}' at difficulty level {level} ({spec.level_meaning}) gave only {len(examples)} "
                f"distinct questions in {count * _MAX_DRAWS_PER_EXAMPLE} draws, fewer than the {count} its pool "
                f"needs (the splits plus a margin of {POOL_MARGIN}). Raise task_difficulty (levels "
                f"{spec.levels.start}-{spec.levels.stop - 1}) or lower score.n_pref / eval.n_test."
            )
        draws_left -= 1
        question = spec.generate_question(rng, level)
        if question in taken:
            continue
        target = spec.solve(question)
        if target is None:
            raise RuntimeError(f"{spec.name}: the solver cannot parse a generated question: {question!r}")
        taken.add(question)
        examples.append(Example(input=question, target=target))
    return examples


def _factory(spec: TaskSpec) -> Callable[..., Task]:
    def make_task(seed: int = 0, difficulty: int = 0, min_examples: int = 0) -> Task:
        return build_task(spec, seed, difficulty, min_examples)

    make_task.__name__ = f"make_{spec.name}"
    make_task.__doc__ = (f"The built-in '{spec.name}' task generated from `seed` at `difficulty` (0 = level "
                         f"{spec.default_level}; levels {spec.levels.start}-{spec.levels.stop - 1}: {spec.level_meaning}), "
                         "with a pool for at least `min_examples` split items.")
    return make_task


BUILTIN_TASKS: dict[str, Callable[..., Task]] = {spec.name: _factory(spec) for spec in SPECS}


def levels_help() -> str:
    """One line per task: its levels, default and what a level counts (for help texts and the studio)."""
    return "; ".join(f"{spec.name} {spec.levels.start}-{spec.levels.stop - 1} (default {spec.default_level}: "
                     f"{spec.level_meaning})" for spec in SPECS)

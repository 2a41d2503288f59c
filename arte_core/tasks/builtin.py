"""Built-in tasks: BBH-format questions generated from a seed and labelled by exact solvers.

`BUILTIN_TASKS` maps a task name to a factory: `BUILTIN_TASKS[name](seed)` returns a Task
with our own three seed exemplars and 300 distinct generated examples, identical for equal seeds.
"""

from __future__ import annotations

import random
from typing import Callable

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

N_EXAMPLES = 300
_MAX_DRAWS_PER_EXAMPLE = 50  # generous: the question spaces are far larger than 300

SPECS: tuple[TaskSpec, ...] = (
    boolean_expressions.SPEC,
    multistep_arithmetic_two.SPEC,
    word_sorting.SPEC,
    object_counting.SPEC,
    dyck_languages.SPEC,
    navigate.SPEC,
    web_of_lies.SPEC,
)


def build_task(spec: TaskSpec, seed: int) -> Task:
    """The Task of `spec` with N_EXAMPLES examples drawn from `random.Random(seed)`."""
    return Task(
        name=spec.name,
        description=spec.description,
        exemplars=list(spec.exemplars),
        examples=generate_examples(spec, seed, N_EXAMPLES),
        answer_format=spec.answer_format,
        solver=spec.solve,
        source="builtin",
        extra={"techniques": {"expert_procedure": spec.expert_procedure, "common_sense": spec.common_sense}},
    )


def generate_examples(spec: TaskSpec, seed: int, count: int) -> list[Example]:
    """`count` distinct questions (none equal to a seed exemplar) labelled by the spec's solver."""
    rng = random.Random(seed)
    taken = {exemplar.input for exemplar in spec.exemplars}
    examples: list[Example] = []
    draws_left = count * _MAX_DRAWS_PER_EXAMPLE
    while len(examples) < count:
        if draws_left == 0:
            raise RuntimeError(f"{spec.name}: only {len(examples)} distinct questions after many draws")
        draws_left -= 1
        question = spec.generate_question(rng)
        if question in taken:
            continue
        target = spec.solve(question)
        if target is None:
            raise RuntimeError(f"{spec.name}: the solver cannot parse a generated question: {question!r}")
        taken.add(question)
        examples.append(Example(input=question, target=target))
    return examples


def _factory(spec: TaskSpec) -> Callable[[int], Task]:
    def make_task(seed: int = 0) -> Task:
        return build_task(spec, seed)

    make_task.__name__ = f"make_{spec.name}"
    make_task.__doc__ = f"The built-in '{spec.name}' task generated from `seed`."
    return make_task


BUILTIN_TASKS: dict[str, Callable[[int], Task]] = {spec.name: _factory(spec) for spec in SPECS}

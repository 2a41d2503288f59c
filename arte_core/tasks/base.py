"""The Task: a description, three seed exemplars, a labelled pool split into preference and test sets."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from arte_core.errors import ArteError
from arte_core.tasks.answers import AnswerFormat, extract_answer, infer_labels, normalise


@dataclass(frozen=True)
class Example:
    """One labelled question."""

    input: str
    target: str


@dataclass(frozen=True)
class Exemplar:
    """A seed demonstration: question, step-by-step rationale and final answer."""

    input: str
    rationale: str
    answer: str


@dataclass
class Task:
    """Everything the stages need to know about one task.

    `solver`, when present, computes the exact answer of any well-formed input; the elicit
    stage uses it to check teacher-written targets. It returns None for input it cannot parse.
    """

    name: str
    description: str
    exemplars: list[Exemplar]
    examples: list[Example]
    answer_format: AnswerFormat
    solver: Callable[[str], str | None] | None = None
    source: str = "builtin"
    labels: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = infer_labels(self.answer_format, [e.target for e in self.examples])
        if not self.description.strip():
            raise ArteError(f"task '{self.name}' has an empty description ({self.source}).")
        if len(self.exemplars) < 1:
            raise ArteError(
                f"task '{self.name}' has no seed exemplars ({self.source}); "
                "its cot-prompt must hold at least one 'Q: … A: …' block."
            )

    def normalise(self, answer: str | None) -> str | None:
        return normalise(self.answer_format, answer)

    def extract(self, text: str) -> str | None:
        return extract_answer(self.answer_format, text, self.labels)

    def is_correct(self, predicted: str | None, target: str) -> bool:
        pred = self.normalise(predicted)
        return pred is not None and pred == self.normalise(target)

    def solve(self, question: str) -> str | None:
        """The solver's answer, normalised; None without a solver or for unparsable input."""
        if self.solver is None:
            return None
        try:
            return self.normalise(self.solver(question))
        except Exception:  # a teacher-written question may be anything; the solver must not crash a run
            return None

    def split(self, n_pref: int, n_test: int, seed: int) -> tuple[list[Example], list[Example]]:
        """A seeded, disjoint (preference, test) split of the labelled pool.

        Seed exemplar questions are kept out of both, so a demo never leaks its own answer.
        """
        seed_inputs = {e.input.strip() for e in self.exemplars}
        pool = [e for e in self.examples if e.input.strip() not in seed_inputs]
        if n_pref < 1:
            raise ArteError(f"n_pref must be at least 1 (got {n_pref}).")
        if len(pool) < n_pref + 1:
            raise ArteError(
                f"task '{self.name}' has {len(pool)} usable examples, too few for a preference "
                f"split of {n_pref} plus a test split; lower score.n_pref or add examples ({self.source})."
            )
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        pref = [pool[i] for i in order[:n_pref]]
        rest = [pool[i] for i in order[n_pref:]]
        return pref, rest[:n_test]

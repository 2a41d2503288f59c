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

    def pool(self) -> list[Example]:
        """The labelled examples that may enter a split or a draft: duplicates (by normalised input) kept
        once, the first time, and seed exemplar questions left out, so a demo never leaks its own answer."""
        seen = {input_key(e.input) for e in self.exemplars}
        pool = []
        for example in self.examples:
            key = input_key(example.input)
            if key not in seen:
                seen.add(key)
                pool.append(example)
        return pool

    def split_labels(self, pool: list[Example]) -> tuple[str, ...]:
        """The closed answer set the splits are stratified over, or () for open answers.

        A TEXT task's inferred labels, True/False, Yes/No, or the choice letters the pool uses. A pool
        with a target outside that set (a stray in public data) is not stratified.
        """
        if self.labels:
            labels = self.labels
        elif self.answer_format is AnswerFormat.BOOLEAN:
            labels = ("False", "True")
        elif self.answer_format is AnswerFormat.YES_NO:
            labels = ("No", "Yes")
        elif self.answer_format is AnswerFormat.CHOICE:
            labels = tuple(sorted({self.normalise(e.target) for e in pool} - {None}))
        else:
            return ()
        return labels if all(self.normalise(e.target) in labels for e in pool) else ()

    def shuffled_by_label(self, pool: list[Example], labels, rng) -> tuple[dict[str, list[Example]], list[str]]:
        """`pool` in one shuffled list per label, and a shuffled order of the labels (which labels get the one
        extra item when a size does not divide), drawn from `rng` in that order."""
        by_label: dict[str, list[Example]] = {label: [] for label in labels}
        for example in pool:
            by_label[self.normalise(example.target)].append(example)
        for examples in by_label.values():
            rng.shuffle(examples)
        turn_order = list(labels)
        rng.shuffle(turn_order)
        return by_label, turn_order

    def split(self, n_pref: int, n_test: int, seed: int, stratify: bool = True) -> tuple[list[Example], list[Example]]:
        """A seeded, disjoint (preference, test) split of the deduplicated pool (see `pool`).

        With a label set (`split_labels`) and `stratify` each split is stratified: labels are drawn in turns, so every
        label gets an equal share within one item. A label too rare for equal shares in both splits is
        shared between them in proportion to their sizes, and the turns go on over the other labels:
        the splits keep their sizes rather than shrinking. Open-answer tasks, and `stratify=False`
        (score.selection 'random'), get a plain seeded random split.
        A run stores its split once (`Store.save_split`); this never re-splits a stored run.
        """
        pool = self.pool()
        if n_pref < 1:
            raise ArteError(f"n_pref must be at least 1 (got {n_pref}).")
        if len(pool) < n_pref + 1:
            raise ArteError(
                f"task '{self.name}' has {len(pool)} usable examples (distinct, seed exemplars left out), too few "
                f"for a preference split of {n_pref} plus a test split; lower score.n_pref or add examples "
                f"({self.source})."
            )
        rng = random.Random(seed)
        labels = self.split_labels(pool) if stratify else ()
        if not labels:
            order = list(range(len(pool)))
            rng.shuffle(order)
            pref = [pool[i] for i in order[:n_pref]]
            rest = [pool[i] for i in order[n_pref:]]
            return pref, rest[:n_test]
        by_label, turn_order = self.shuffled_by_label(pool, labels, rng)
        total = n_pref + n_test
        # A rare label's share of the test split, kept out of the preference draw.
        reserved = {label: examples[:len(examples) * n_test // total] if len(examples) * len(labels) < total else []
                    for label, examples in by_label.items()}
        for label, kept_back in reserved.items():
            del by_label[label][:len(kept_back)]
        pref = take_in_turns(by_label, turn_order, n_pref)
        for label, kept_back in reserved.items():
            by_label[label] += kept_back
        return pref, take_in_turns(by_label, turn_order, n_test)


def input_key(text: str) -> str:
    """An input as compared for duplicates: case and runs of whitespace ignored."""
    return " ".join(text.split()).lower()


def take_in_turns(by_label: dict[str, list[Example]], turn_order: list[str], n: int) -> list[Example]:
    """Up to `n` examples, one label at a time in `turn_order`, removed from `by_label`."""
    taken: list[Example] = []
    while len(taken) < n and any(by_label.values()):
        for label in turn_order:
            if by_label[label] and len(taken) < n:
                taken.append(by_label[label].pop())
    return taken

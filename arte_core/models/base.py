"""The one generation interface every backend implements (transformers on CPU, vLLM on GPU)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence


@dataclass(frozen=True)
class SamplingParams:
    """How to decode. temperature 0 means greedy; seed makes sampling reproducible."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    include_stop: bool = False  # keep the stop string that ended the text (e.g. a closing </ans>)
    seed: int | None = None


@dataclass
class Generation:
    """One completion: the text up to (not including) the first stop string."""

    text: str
    n_prompt_tokens: int
    n_generated_tokens: int
    stopped: bool  # True when a stop string or EOS ended it, False when it hit max_new_tokens
    extra: dict = field(default_factory=dict)


ProgressCallback = Callable[[int], None]  # called with the number of prompts just completed


class Generator(Protocol):
    """A loaded causal language model that completes text prompts."""

    name: str  # the registry name or path it was loaded from

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[Generation]:
        """Complete every prompt; results are in prompt order."""
        ...

    def generate_each(
        self, prompts: Sequence[str], params: SamplingParams, batch_size: int = 8
    ) -> Iterator[tuple[int, Generation]]:
        """Complete every prompt, yielding (prompt index, generation) as each is done, in no set order:
        a caller can store results while later prompts are still being decoded."""
        ...

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        """The prompt text for one user turn, through the model's chat template when it has one."""
        ...

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context."""
        ...


def _first_stop(text: str, stop: Sequence[str]) -> tuple[int, int] | None:
    """(start, end) of the earliest stop string after the text's first non-whitespace character.

    Leading whitespace never ends a completion: a student that opens its answer with a blank line
    (SmolLM2 does, zero-shot) has not answered yet.
    """
    begin = len(text) - len(text.lstrip())
    found = None
    for s in stop:
        if s:
            i = text.find(s, begin)
            if i != -1 and (found is None or i < found[0]):
                found = (i, i + len(s))
    return found


def has_stop(text: str, stop: Sequence[str]) -> bool:
    return _first_stop(text, stop) is not None


def truncate_at_stop(text: str, stop: Sequence[str], include_stop: bool = False) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string (keeping it if asked); report whether one was found."""
    found = _first_stop(text, stop)
    if found is None:
        return text, False
    return (text[:found[1]] if include_stop else text[:found[0]]), True

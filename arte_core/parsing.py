"""Parsers for teacher output: tagged question blocks and rationales that end in an answer.

Parsers never raise on model text; they return what they could read and count what they could not.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

_BLOCK = re.compile(r"<input>((?:(?!<input>).)*?)</input>\s*<target>((?:(?!<input>).)*?)</target>", re.S | re.I)
_INPUT_OPEN = re.compile(r"<input>", re.I)
_ANS_TAG = re.compile(r"<ans>\s*(.*?)\s*</ans>", re.S | re.I)
_TRAILING_ANSWER = re.compile(r"(?:<ans>.*?(?:</ans>|$)|So the answer is[^\n]*)\s*$", re.S | re.I)


@dataclass
class ParsedQuestions:
    """Questions read from one teacher reply, and how many question-looking blocks were unusable."""

    questions: list[tuple[str, str]] = field(default_factory=list)
    n_unparsed: int = 0


def parse_question_blocks(text: str) -> ParsedQuestions:
    """Read `<input>…</input><target>…</target>` blocks; a block missing a part counts as unparsed."""
    found = []
    for question, target in _BLOCK.findall(text):
        question, target = question.strip(), target.strip()
        if question and target:
            found.append((question, target))
    n_opened = len(_INPUT_OPEN.findall(text))
    return ParsedQuestions(found, max(0, n_opened - len(found)))


def parse_rationale_answer(text: str) -> str | None:
    """The raw answer a rationale ends with: the last <ans> tag, else None (the caller may be lenient)."""
    tagged = _ANS_TAG.findall(text)
    return tagged[-1].strip() if tagged else None


def strip_answer(rationale: str) -> str:
    """The reasoning without its final answer tag or 'So the answer is' sentence."""
    return _TRAILING_ANSWER.sub("", rationale.strip()).strip()


def word_count(rationale: str) -> int:
    return len(strip_answer(rationale).split())


def normalise_question(text: str) -> str:
    return " ".join(text.lower().split())


class Deduplicator:
    """Drops exact and near-duplicate questions (character similarity at or above a threshold)."""

    def __init__(self, threshold: float, seen: list[str] = ()):
        self.threshold = threshold
        self._kept: list[str] = [normalise_question(s) for s in seen]
        self._exact: set[str] = set(self._kept)

    def add(self, question: str) -> bool:
        """Remember `question` and return True when it is new; False for a duplicate."""
        norm = normalise_question(question)
        if norm in self._exact:
            return False
        if self.threshold < 1.0:
            for kept in self._kept:
                matcher = difflib.SequenceMatcher(None, norm, kept, autojunk=False)
                if matcher.real_quick_ratio() >= self.threshold and matcher.ratio() >= self.threshold:
                    return False
        self._kept.append(norm)
        self._exact.add(norm)
        return True

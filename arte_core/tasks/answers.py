"""Answer formats: how a task's answers are normalised and extracted from free model text.

A small student rarely follows an output format exactly (SmolLM2-135M put 2 of 40 answers inside
`<ans>` tags when asked to), so extraction is lenient and ordered from most to least explicit:
`<ans>X</ans>`, then "the answer is X", then the last valid label in the text.
"""

from __future__ import annotations

import re
from enum import Enum

_ANS_TAG = re.compile(r"<ans>\s*(.*?)\s*</ans>", re.S | re.I)
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*(.+?)(?:\.\s|\.$|\n|$)", re.I)
_CHOICE = re.compile(r"\(([A-R])\)")
_INT = re.compile(r"-?\d+")


class AnswerFormat(str, Enum):
    """The shape of a task's target; decides normalisation and lenient extraction."""

    BOOLEAN = "boolean"  # True / False
    YES_NO = "yes_no"  # Yes / No
    CHOICE = "choice"  # (A) … (R)
    INTEGER = "integer"  # -12, 7
    TEXT = "text"  # anything else, compared after whitespace and case folding

    @classmethod
    def infer(cls, targets: list[str]) -> "AnswerFormat":
        """Guess the format from a task's targets.

        95% of them must fit: public data has strays (one BBH movie_recommendation target is a title).
        """
        cleaned = [t.strip() for t in targets if t.strip()]
        if not cleaned:
            return cls.TEXT

        def mostly(ok) -> bool:
            return sum(1 for t in cleaned if ok(t)) >= 0.95 * len(cleaned)

        if mostly(lambda t: t in ("True", "False")):
            return cls.BOOLEAN
        if mostly(lambda t: t.lower() in ("yes", "no")):
            return cls.YES_NO
        if mostly(lambda t: re.fullmatch(r"\([A-R]\)", t)):
            return cls.CHOICE
        if mostly(lambda t: re.fullmatch(r"-?\d+", t)):
            return cls.INTEGER
        return cls.TEXT


def infer_labels(fmt: AnswerFormat, targets: list[str], max_labels: int = 8) -> tuple[str, ...]:
    """The closed label set of a TEXT task (e.g. valid / invalid), or () when answers are open."""
    if fmt is not AnswerFormat.TEXT:
        return ()
    distinct = sorted({normalise(fmt, t) for t in targets if t.strip()} - {None})
    return tuple(distinct) if 0 < len(distinct) <= max_labels else ()


def normalise(fmt: AnswerFormat, answer: str | None) -> str | None:
    """Canonical form of an answer, or None when it does not fit the format."""
    if answer is None:
        return None
    text = answer.strip().strip("*`\"' ").rstrip(".").strip()
    if not text:
        return None
    if fmt is AnswerFormat.BOOLEAN:
        low = text.lower()
        if low in ("true", "false"):
            return low.capitalize()
        return None
    if fmt is AnswerFormat.YES_NO:
        low = text.lower()
        if low in ("yes", "no"):
            return low.capitalize()
        return None
    if fmt is AnswerFormat.CHOICE:
        m = _CHOICE.search(text) or re.fullmatch(r"([A-R])", text)
        return f"({m.group(1)})" if m else None
    if fmt is AnswerFormat.INTEGER:
        m = _INT.fullmatch(text.replace(",", ""))
        return str(int(m.group(0))) if m else None
    return " ".join(text.split()).lower()


def _last_label(fmt: AnswerFormat, text: str, labels: tuple[str, ...] = ()) -> str | None:
    """The last token in `text` that is a valid answer of this format (or of its label set)."""
    if labels:
        pattern = "|".join(re.escape(l) for l in sorted(labels, key=len, reverse=True))
        found = re.findall(rf"(?<!\w)({pattern})(?!\w)", text, re.I)
    elif fmt is AnswerFormat.BOOLEAN:
        found = re.findall(r"\b(True|False)\b", text, re.I)
    elif fmt is AnswerFormat.YES_NO:
        found = re.findall(r"\b(Yes|No)\b", text, re.I)
    elif fmt is AnswerFormat.CHOICE:
        found = _CHOICE.findall(text)
    elif fmt is AnswerFormat.INTEGER:
        found = _INT.findall(text.replace(",", ""))
    else:
        return None
    return normalise(fmt, found[-1]) if found else None


def extract_answer(fmt: AnswerFormat, text: str, labels: tuple[str, ...] = ()) -> str | None:
    """Pull the final answer out of a model's free text; None when nothing usable is there.

    `labels` is the closed answer set of a TEXT task; with it, only those answers count.
    """
    tagged = _ANS_TAG.findall(text)
    if tagged:
        value = normalise(fmt, tagged[-1])
        if value is not None and (not labels or value in labels):
            return value
        return _last_label(fmt, tagged[-1], labels)
    stated = _ANSWER_IS.findall(text)
    if stated:
        value = normalise(fmt, stated[-1])
        if value is not None and labels and value not in labels:
            value = _last_label(fmt, stated[-1], labels)
        elif value is None and (fmt is not AnswerFormat.TEXT or labels):
            value = _last_label(fmt, stated[-1], labels)
        if value is not None:
            return value
    if fmt is AnswerFormat.TEXT and not labels:
        return None
    return _last_label(fmt, text, labels)

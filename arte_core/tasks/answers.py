"""Answer formats: how a task's answers are normalised and read out of free model text.

A reading is strict, lenient or none, and says which (`Reading.parse_mode`):
- strict: the answer stated in the task's explicit form, `<ans>X</ans>` (or a trailing `<ans>X` whose
  closing tag was the stop string) or "the answer is X" with X right after "is". The last such
  statement decides: an earlier one is not read when the last is unreadable ("…is True. No, the
  answer is not True" is not True).
- lenient: the last valid answer word of a finished output (SmolLM2-135M put 2 of 40 answers inside
  `<ans>` tags when asked to, and often ends a chain without "the answer is").
- none: nothing usable.
An output cut off by the token cap (`finished=False`) is read strictly only: its last True/False word
is an intermediate step of a chain, not an answer. A negated answer ("not True", "isn't (B)") is
never read: it is unparsed rather than its opposite, because "not True" is also a fragment of the
expressions boolean_expressions reasons about and a negated choice names no answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_ANS_TAG = re.compile(r"<ans>\s*(.*?)\s*</ans>", re.S | re.I)
_OPEN_ANS_TAG_AT_END = re.compile(r"<ans>\s*([^<]*?)\s*$", re.S | re.I)  # its </ans> was the stop string
_ANSWER_IS = re.compile(r"answer\s+is\b[\s:*\"'`]*", re.I)
_PHRASE_END = re.compile(r"\.\s|\.$|\n|$")
_NEGATED = re.compile(r"(?:\bnot|n['’]t)[\s\"'(*`]*$", re.I)
_CHOICE = re.compile(r"\(([A-R])\)")
_INT = re.compile(r"-?\d+")
_INT_WITH_COMMAS = r"-?\d(?:[\d,]*\d)?"


class ParseMode(str, Enum):
    STRICT = "strict"
    LENIENT = "lenient"
    NONE = "none"


@dataclass(frozen=True)
class Reading:
    """The answer read from one output, how it was read, and whether the output hit the token cap."""

    answer: str | None
    parse_mode: str  # ParseMode value; 'none' exactly when answer is None
    truncated: bool


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


def is_label_task(fmt: AnswerFormat, labels: tuple[str, ...] = ()) -> bool:
    """Whether answers come from a small closed set, where a student can score by repeating one label
    (and balanced accuracy is the fair score); integers and open text are not."""
    return fmt in (AnswerFormat.BOOLEAN, AnswerFormat.YES_NO, AnswerFormat.CHOICE) or bool(labels)


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


def _answer_pattern(fmt: AnswerFormat, labels: tuple[str, ...]) -> str | None:
    """A regex for one answer word of this format (or of its label set); None for open text."""
    if labels:
        return "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    return {AnswerFormat.BOOLEAN: r"True|False", AnswerFormat.YES_NO: r"Yes|No",
            AnswerFormat.CHOICE: r"\([A-R]\)", AnswerFormat.INTEGER: _INT_WITH_COMMAS}.get(fmt)


def _valid(fmt: AnswerFormat, raw: str, labels: tuple[str, ...]) -> str | None:
    value = normalise(fmt, raw)
    return value if value is not None and (not labels or value in labels) else None


def _stated(fmt: AnswerFormat, text: str, labels: tuple[str, ...]) -> str | None | bool:
    """The answer of the last "answer is X" statement; None when it is unreadable, False without one."""
    found = list(_ANSWER_IS.finditer(text))
    if not found:
        return False
    rest = text[found[-1].end():]
    pattern = _answer_pattern(fmt, labels)
    if pattern is None:  # open text: the phrase up to the end of the sentence
        return _valid(fmt, rest[:_PHRASE_END.search(rest).start()], labels)
    if fmt is AnswerFormat.CHOICE and not labels:
        pattern = r"\(?[A-R]\)?"  # "the answer is B" states a choice as plainly as "(B)"
    m = re.match(rf"({pattern})(?!\w)", rest, re.I)
    return _valid(fmt, m.group(1), labels) if m else None


def _strict(fmt: AnswerFormat, text: str, labels: tuple[str, ...]) -> str | None | bool:
    """The answer in the task's explicit form; None when that form is there but unreadable, False
    when the text has no explicit answer at all."""
    tagged = _ANS_TAG.findall(text)
    if tagged:
        return _valid(fmt, tagged[-1], labels)
    open_tag = _OPEN_ANS_TAG_AT_END.search(text)
    if open_tag:
        return _valid(fmt, open_tag.group(1), labels)
    return _stated(fmt, text, labels)


def _last_answer_word(fmt: AnswerFormat, text: str, labels: tuple[str, ...]) -> str | None:
    """The last answer word in `text`, unless it is negated; None for open text."""
    pattern = _answer_pattern(fmt, labels)
    if pattern is None:
        return None
    found = list(re.finditer(rf"(?<!\w)({pattern})(?!\w)", text, re.I))
    if not found or _NEGATED.search(text[:found[-1].start()]):
        return None
    return _valid(fmt, found[-1].group(1), labels)


def read_answer(fmt: AnswerFormat, text: str, labels: tuple[str, ...] = (), finished: bool = True) -> Reading:
    """Read the final answer of one model output (see the module docstring for the rules).

    `labels` is the closed answer set of a TEXT task; with it, only those answers count. `finished`
    is False for an output that hit its token cap (`Generation.stopped` False).
    """
    strict = _strict(fmt, text, labels)
    if strict:
        return Reading(strict, ParseMode.STRICT.value, not finished)
    if finished:
        lenient = _last_answer_word(fmt, text, labels)
        if lenient is not None:
            return Reading(lenient, ParseMode.LENIENT.value, False)
    return Reading(None, ParseMode.NONE.value, not finished)


def extract_answer(fmt: AnswerFormat, text: str, labels: tuple[str, ...] = ()) -> str | None:
    """The answer of a finished output, strict or lenient; None when nothing usable is there."""
    return read_answer(fmt, text, labels).answer

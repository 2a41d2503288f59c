"""multistep_arithmetic_two: integer expressions like "((-1 + 2 + 9 * 5) - (-2 + -4)) =" (BBH format).

Evaluated by a small recursive-descent parser over + - * and brackets; never eval().
"""

from __future__ import annotations

import random
import re

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

_TOKEN = re.compile(r"\s*([0-9]+|[-+*()]|\S)")
_NUMBER = re.compile(r"[0-9]{1,18}")  # longer numbers are not arithmetic questions
_OPERATORS = ("+", "-", "*")
_MAX_TOKENS = 200  # keeps the recursive parser far from Python's recursion limit


class _Unparsable(Exception):
    """The question is not a well-formed + - * expression."""


def solve(question: str) -> str | None:
    """The integer value of the expression (a trailing "=" is allowed), or None if malformed."""
    text = question.strip()
    if text.endswith("="):
        text = text[:-1]
    tokens = _TOKEN.findall(text)
    if not tokens or len(tokens) > _MAX_TOKENS:
        return None
    try:
        value, end = _parse_sum(tokens, 0)
    except _Unparsable:
        return None
    return str(value) if end == len(tokens) else None


def _parse_sum(tokens: list[str], pos: int) -> tuple[int, int]:
    value, pos = _parse_product(tokens, pos)
    while pos < len(tokens) and tokens[pos] in ("+", "-"):
        operator = tokens[pos]
        right, pos = _parse_product(tokens, pos + 1)
        value = value + right if operator == "+" else value - right
    return value, pos


def _parse_product(tokens: list[str], pos: int) -> tuple[int, int]:
    value, pos = _parse_signed(tokens, pos)
    while pos < len(tokens) and tokens[pos] == "*":
        right, pos = _parse_signed(tokens, pos + 1)
        value *= right
    return value, pos


def _parse_signed(tokens: list[str], pos: int) -> tuple[int, int]:
    sign = 1
    while pos < len(tokens) and tokens[pos] in ("+", "-"):
        sign = -sign if tokens[pos] == "-" else sign
        pos += 1
    value, pos = _parse_atom(tokens, pos)
    return sign * value, pos


def _parse_atom(tokens: list[str], pos: int) -> tuple[int, int]:
    if pos >= len(tokens):
        raise _Unparsable
    token = tokens[pos]
    if _NUMBER.fullmatch(token):
        return int(token), pos + 1
    if token == "(":
        value, pos = _parse_sum(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise _Unparsable
        return value, pos + 1
    raise _Unparsable


LEVELS = range(1, 7)
DEFAULT_LEVEL = 4  # BBH's four numbers per group
LEVEL_MEANING = "numbers in each of the two bracketed groups"


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """Two bracketed groups of `level` numbers (four at the default level, as in BBH) joined by one
    operator, numbers in -9..9."""
    left, right = _random_group(rng, level), _random_group(rng, level)
    return f"(({left}) {rng.choice(_OPERATORS)} ({right})) ="


def _random_group(rng: random.Random, size: int) -> str:
    parts = [str(rng.randint(-9, 9))]
    for _ in range(size - 1):
        parts += [rng.choice(_OPERATORS), str(rng.randint(-9, 9))]
    return " ".join(parts)


_ORDER = (
    "Recall the order of operations: brackets first, then multiplication, then addition and "
    "subtraction from left to right."
)

EXEMPLARS = (
    Exemplar(
        input="((4 - -3 * 2 + 7) + (-8 * 1 - 5 + 0)) =",
        rationale=(
            f"{_ORDER}\n"
            'The expression has the form "A + B", where A = (4 - -3 * 2 + 7) and B = (-8 * 1 - 5 + 0).\n'
            "A = (4 - (-3 * 2) + 7) = (4 - (-6) + 7) = (10 + 7) = 17.\n"
            "B = ((-8 * 1) - 5 + 0) = (-8 - 5 + 0) = (-13 + 0) = -13.\n"
            "Then A + B = 17 + (-13) = 4. So the answer is 4."
        ),
        answer="4",
    ),
    Exemplar(
        input="((-6 + 2 * 3 * -1) * (7 - 9 + -2 * 4)) =",
        rationale=(
            f"{_ORDER}\n"
            'The expression has the form "A * B", where A = (-6 + 2 * 3 * -1) and B = (7 - 9 + -2 * 4).\n'
            "A = (-6 + (2 * 3 * -1)) = (-6 + (-6)) = -12.\n"
            "B = (7 - 9 + (-2 * 4)) = (7 - 9 + (-8)) = (-2 + (-8)) = -10.\n"
            "Then A * B = -12 * -10 = 120. So the answer is 120."
        ),
        answer="120",
    ),
    Exemplar(
        input="((5 * -2 - 1 - -8) - (3 + 6 * -5 * 0)) =",
        rationale=(
            f"{_ORDER}\n"
            'The expression has the form "A - B", where A = (5 * -2 - 1 - -8) and B = (3 + 6 * -5 * 0).\n'
            "A = ((5 * -2) - 1 - (-8)) = (-10 - 1 - (-8)) = (-11 + 8) = -3.\n"
            "B = (3 + (6 * -5 * 0)) = (3 + 0) = 3.\n"
            "Then A - B = -3 - 3 = -6. So the answer is -6."
        ),
        answer="-6",
    ),
)

SPEC = TaskSpec(
    name="multistep_arithmetic_two",
    description="Solve multi-step arithmetic problems.",
    answer_format=AnswerFormat.INTEGER,
    exemplars=EXEMPLARS,
    expert_procedure=(
        'Name the two bracketed groups A and B so the problem reads "A op B". '
        "Inside each group, first compute every multiplication (a product of two negatives is positive), "
        "then add and subtract from left to right, writing each negative number in its own brackets so "
        'that "- -8" is read as "+ 8". '
        "Finally combine A and B with the middle operator and double-check the sign of the result."
    ),
    common_sense=(
        "Do the small sums inside each pair of brackets first, multiplying before adding. "
        "Keep careful track of minus signs: subtracting a negative number is the same as adding it. "
        "Then combine the two results."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

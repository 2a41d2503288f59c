"""boolean_expressions: evaluate expressions like "not ( True ) and ( True ) is" (BBH format)."""

from __future__ import annotations

import random
import re

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

_TOKEN = re.compile(r"\(|\)|[A-Za-z]+|\S")
_LITERALS = {"true": True, "false": False}
_MAX_TOKENS = 200  # keeps the recursive parser far from Python's recursion limit


class _Unparsable(Exception):
    """The question is not a well-formed Boolean expression."""


def solve(question: str) -> str | None:
    """'True' or 'False' for a well-formed expression (optionally ending in "is"), else None."""
    tokens = [t.lower() for t in _TOKEN.findall(question)]
    if tokens and tokens[-1] == "is":
        tokens.pop()
    if not tokens or len(tokens) > _MAX_TOKENS:
        return None
    try:
        value, end = _parse_or(tokens, 0)
    except _Unparsable:
        return None
    return str(value) if end == len(tokens) else None


def _parse_or(tokens: list[str], pos: int) -> tuple[bool, int]:
    value, pos = _parse_and(tokens, pos)
    while pos < len(tokens) and tokens[pos] == "or":
        right, pos = _parse_and(tokens, pos + 1)
        value = value or right
    return value, pos


def _parse_and(tokens: list[str], pos: int) -> tuple[bool, int]:
    value, pos = _parse_not(tokens, pos)
    while pos < len(tokens) and tokens[pos] == "and":
        right, pos = _parse_not(tokens, pos + 1)
        value = value and right
    return value, pos


def _parse_not(tokens: list[str], pos: int) -> tuple[bool, int]:
    negations = 0
    while pos < len(tokens) and tokens[pos] == "not":
        negations += 1
        pos += 1
    value, pos = _parse_atom(tokens, pos)
    return (not value if negations % 2 else value), pos


def _parse_atom(tokens: list[str], pos: int) -> tuple[bool, int]:
    if pos >= len(tokens):
        raise _Unparsable
    token = tokens[pos]
    if token in _LITERALS:
        return _LITERALS[token], pos + 1
    if token == "(":
        value, pos = _parse_or(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise _Unparsable
        return value, pos + 1
    raise _Unparsable


LEVELS = range(1, 6)
DEFAULT_LEVEL = 3  # BBH's eight tokens with one level of brackets
LEVEL_MEANING = "expression size: 2 × level + 2 tokens, brackets nested up to level − 2 deep from level 4"


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """A random expression of `2 * level + 2` tokens (eight at the default level, as in BBH); brackets
    nest one deep up to the default level and `level - 2` deep above it."""
    size = 2 * level + 2
    depth = max(1, level - 2)
    while True:
        tokens = _random_expression(rng, depth)
        if len(tokens) == size:
            return " ".join(tokens) + " is"


def _random_expression(rng: random.Random, depth: int) -> list[str]:
    tokens = _random_operand(rng, depth)
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
        tokens += [rng.choice(["and", "or"])] + _random_operand(rng, depth)
    return tokens


def _random_operand(rng: random.Random, depth: int) -> list[str]:
    negations = ["not"] * rng.choice([0, 0, 0, 1, 1, 2, 3, 4])
    # `depth > 0` before the draw: at depth 0 no number is drawn, which keeps the default level's
    # random sequence (and so every stored question) as it was before levels existed.
    if depth > 0 and rng.random() < 0.3:
        return negations + ["("] + _random_expression(rng, depth - 1) + [")"]
    return negations + [rng.choice(["True", "False"])]


_PRECEDENCE = (
    'Remember that (i) brackets are evaluated first and (ii) "not" binds tighter than "and", '
    'which binds tighter than "or".'
)

EXEMPLARS = (
    Exemplar(
        input="not ( False or True ) and True is",
        rationale=(
            f"{_PRECEDENCE}\n"
            "First the bracket: ( False or True ) = True.\n"
            "The expression becomes: not True and True.\n"
            "Apply \"not\": not True = False, so we have False and True.\n"
            "Apply \"and\": False and True = False. So the answer is False."
        ),
        answer="False",
    ),
    Exemplar(
        input="not False and True or ( False ) is",
        rationale=(
            f"{_PRECEDENCE}\n"
            "First the bracket: ( False ) = False.\n"
            "The expression becomes: not False and True or False.\n"
            "Apply \"not\": not False = True, so we have True and True or False.\n"
            "Apply \"and\": True and True = True, so we have True or False.\n"
            "Apply \"or\": True or False = True. So the answer is True."
        ),
        answer="True",
    ),
    Exemplar(
        input="True and False or not False and True is",
        rationale=(
            f"{_PRECEDENCE}\n"
            "There are no brackets.\n"
            "Apply \"not\": not False = True, so we have True and False or True and True.\n"
            "Apply each \"and\": True and False = False, and True and True = True, so we have False or True.\n"
            "Apply \"or\": False or True = True. So the answer is True."
        ),
        answer="True",
    ),
)

SPEC = TaskSpec(
    name="boolean_expressions",
    description="Evaluate the result of a random Boolean expression.",
    answer_format=AnswerFormat.BOOLEAN,
    exemplars=EXEMPLARS,
    expert_procedure=(
        "Evaluate the innermost brackets first and replace each bracket by its value. "
        'Then apply the operators by precedence: every "not" first (an even number of "not"s cancels out), '
        'then every "and" from left to right, then every "or" from left to right. '
        "Rewrite the whole expression after each step so that exactly one operation changes at a time, "
        "until a single True or False remains."
    ),
    common_sense=(
        '"not" flips a value, "and" is True only when both sides are True, and "or" is True when at least '
        "one side is True. Work out the small pieces inside brackets first, then read the rest like a "
        "sentence, doing the flips before joining pieces with and/or."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

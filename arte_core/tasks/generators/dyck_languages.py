"""dyck_languages: close the brackets still open in "... Input: [ { ( ) ..." (BBH format)."""

from __future__ import annotations

import random

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

_PREFIX = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input:"
CLOSER_OF = {"(": ")", "[": "]", "{": "}", "<": ">"}
_OPENER_OF = {closer: opener for opener, closer in CLOSER_OF.items()}


def solve(question: str) -> str | None:
    """The closing brackets that finish the sequence, space-separated; None if malformed or already closed."""
    start = question.rfind("Input:")
    if start < 0:
        return None
    stack = _open_brackets(question[start + len("Input:"):])
    if not stack:
        return None
    return " ".join(CLOSER_OF[opener] for opener in reversed(stack))


def _open_brackets(sequence: str) -> list[str] | None:
    """The stack of still-open brackets, or None if a bracket closes the wrong one or a symbol is foreign."""
    stack: list[str] = []
    for symbol in "".join(sequence.split()):
        if symbol in CLOSER_OF:
            stack.append(symbol)
        elif symbol in _OPENER_OF and stack and stack[-1] == _OPENER_OF[symbol]:
            stack.pop()
        else:
            return None
    return stack


PAIR_BUDGETS = (0, 1, 2, 4, 6, 10, 15, 25, 40)
LEVELS = range(1, len(PAIR_BUDGETS) + 1)
DEFAULT_LEVEL = len(PAIR_BUDGETS)  # every budget: from a couple of symbols up to about a hundred
LEVEL_MEANING = ("length and nesting: the balanced runs hold up to the level-th of 0, 1, 2, 4, 6, 10, 15, 25, 40 "
                 "bracket pairs")


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """Balanced runs around 1-3 brackets left open; the runs' pair budget is drawn from the first `level`
    of PAIR_BUDGETS (all of them at the default level: a couple of symbols up to about a hundred)."""
    left_open = rng.randint(1, 3)
    pair_budget = rng.choice(PAIR_BUDGETS[:level])
    symbols: list[str] = []
    for _ in range(left_open):
        symbols += _balanced(rng, rng.randint(0, pair_budget // left_open))
        symbols.append(rng.choice(sorted(CLOSER_OF)))
    symbols += _balanced(rng, rng.randint(0, pair_budget // left_open))
    return f"{_PREFIX} {' '.join(symbols)}"


def _balanced(rng: random.Random, pairs: int) -> list[str]:
    """A random well-nested sequence of `pairs` bracket pairs."""
    symbols: list[str] = []
    stack: list[str] = []
    to_open = pairs
    while to_open or stack:
        if to_open and (not stack or rng.random() < 0.55):
            opener = rng.choice(sorted(CLOSER_OF))
            stack.append(opener)
            symbols.append(opener)
            to_open -= 1
        else:
            symbols.append(CLOSER_OF[stack.pop()])
    return symbols


EXEMPLARS = (
    Exemplar(
        input=f"{_PREFIX} ( < [ ] > {{",
        rationale=(
            "We read the symbols one by one and keep a stack of the brackets still open.\n"
            "0: empty stack\n"
            "1: ( ; stack: (\n"
            "2: < ; stack: ( <\n"
            "3: [ ; stack: ( < [\n"
            "4: ] ; stack: ( <\n"
            "5: > ; stack: (\n"
            "6: { ; stack: ( {\n"
            'At the end the stack is "( {". We close it from the top: "{" first, then "(".\n'
            'So we need "}", ")". So the answer is } ).'
        ),
        answer="} )",
    ),
    Exemplar(
        input=f"{_PREFIX} [ ( ) {{ < > }} < {{",
        rationale=(
            "We read the symbols one by one and keep a stack of the brackets still open.\n"
            "0: empty stack\n"
            "1: [ ; stack: [\n"
            "2: ( ; stack: [ (\n"
            "3: ) ; stack: [\n"
            "4: { ; stack: [ {\n"
            "5: < ; stack: [ { <\n"
            "6: > ; stack: [ {\n"
            "7: } ; stack: [\n"
            "8: < ; stack: [ <\n"
            "9: { ; stack: [ < {\n"
            'At the end the stack is "[ < {". We close it from the top: "{", then "<", then "[".\n'
            'So we need "}", ">", "]". So the answer is } > ].'
        ),
        answer="} > ]",
    ),
    Exemplar(
        input=f"{_PREFIX} < {{ ( [ ] ) }} ( ( ) ) [ {{ }} ]",
        rationale=(
            "We read the symbols one by one and keep a stack of the brackets still open.\n"
            "0: empty stack\n"
            "1: < ; stack: <\n"
            "2: { ; stack: < {\n"
            "3: ( ; stack: < { (\n"
            "4: [ ; stack: < { ( [\n"
            "5: ] ; stack: < { (\n"
            "6: ) ; stack: < {\n"
            "7: } ; stack: <\n"
            "8: ( ; stack: < (\n"
            "9: ( ; stack: < ( (\n"
            "10: ) ; stack: < (\n"
            "11: ) ; stack: <\n"
            "12: [ ; stack: < [\n"
            "13: { ; stack: < [ {\n"
            "14: } ; stack: < [\n"
            "15: ] ; stack: <\n"
            'At the end the stack is "<". We close it with ">". So the answer is >.'
        ),
        answer=">",
    ),
)

SPEC = TaskSpec(
    name="dyck_languages",
    description="Correctly close a Dyck-n word.",
    answer_format=AnswerFormat.TEXT,
    exemplars=EXEMPLARS,
    expert_procedure=(
        "Process the input symbols one at a time while maintaining a stack: push every opening bracket, and "
        "for every closing bracket pop the matching opening bracket from the top. "
        "Write the stack after each symbol so that no symbol is skipped. "
        "At the end, close the remaining stack from the top down, writing the matching closing bracket for "
        "each, and output only those closing brackets separated by single spaces."
    ),
    common_sense=(
        "Every bracket that was opened must be closed, and the most recently opened one closes first. "
        "Pair up the brackets that already match, see which ones are still waiting, and close them in "
        "reverse order of opening."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

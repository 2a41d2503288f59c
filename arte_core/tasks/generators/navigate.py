"""navigate: "If you follow these instructions, do you return to the starting point? ..." (BBH format)."""

from __future__ import annotations

import random
import re

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

_PREFIX = "If you follow these instructions, do you return to the starting point?"
_OPTIONS = "\nOptions:\n- Yes\n- No"
_QUESTION = re.compile(
    r"\s*If you follow these instructions, do you return to the starting point\?(.*?)(?:Options:.*)?", re.S | re.I
)
_FACE_FORWARD = re.compile(r"always face forward", re.I)
_TURN = re.compile(r"turn (left|right|around)", re.I)
_TAKE = re.compile(r"take ([0-9]{1,9}) steps?(?: (forward|backward|left|right))?", re.I)
_DIRECTIONS = ("forward", "backward", "left", "right")
_TURN_OF_STEP = {"forward": None, "backward": "around", "left": "left", "right": "right"}

Vector = tuple[int, int]


def solve(question: str) -> str | None:
    """'Yes' when the walk ends where it started, 'No' otherwise, None if an instruction is unknown."""
    match = _QUESTION.fullmatch(question)
    if not match:
        return None
    sentences = [s.strip() for s in match.group(1).split(".") if s.strip()]
    if not sentences:
        return None
    position, heading = (0, 0), (0, 1)
    for sentence in sentences:
        moved = _follow(sentence, position, heading)
        if moved is None:
            return None
        position, heading = moved
    return "Yes" if position == (0, 0) else "No"


def _follow(sentence: str, position: Vector, heading: Vector) -> tuple[Vector, Vector] | None:
    """Position and heading after one instruction, or None if the instruction is unknown."""
    if _FACE_FORWARD.fullmatch(sentence):
        return position, heading
    turn = _TURN.fullmatch(sentence)
    if turn:
        return position, _turned(heading, turn.group(1).lower())
    take = _TAKE.fullmatch(sentence)
    if take:
        steps, direction = int(take.group(1)), (take.group(2) or "forward").lower()
        dx, dy = _turned(heading, _TURN_OF_STEP[direction])
        return (position[0] + steps * dx, position[1] + steps * dy), heading
    return None


def _turned(heading: Vector, turn: str | None) -> Vector:
    """The heading after turning left, right or around (None keeps it)."""
    dx, dy = heading
    return {"left": (-dy, dx), "right": (dy, -dx), "around": (-dx, -dy)}.get(turn, heading)


LEVELS = range(2, 13)
DEFAULT_LEVEL = 8  # BBH's walks: 2-8 moves, at most 10 instructions with the way back
LEVEL_MEANING = "the most moves before the way back (2 to level; at most level + 2 instructions in all)"


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """Either "Always face forward" with directed steps, or turns with plain steps; about 45% return.
    A walk makes 2 to `level` moves before any way back and has 3 to `level + 2` instructions (2-8 moves
    and 3-10 instructions at the default level, as in BBH)."""
    want_return = rng.random() < 0.45
    while True:
        if rng.random() < 0.5:
            sentences = _face_forward_walk(rng, want_return, level)
        else:
            sentences = _turning_walk(rng, want_return, level)
        if 3 <= len(sentences) <= level + 2:
            return f"{_PREFIX} {' '.join(sentences)}{_OPTIONS}"


def _face_forward_walk(rng: random.Random, want_return: bool, most_moves: int) -> list[str]:
    moves = [(rng.randint(1, 10), rng.choice(_DIRECTIONS)) for _ in range(rng.randint(2, most_moves))]
    if want_return:
        moves += _cancelling_moves(rng, moves)
        rng.shuffle(moves)
    return ["Always face forward."] + [_take_sentence(steps, direction) for steps, direction in moves]


def _cancelling_moves(rng: random.Random, moves: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Directed moves that bring the walker of `moves` (always facing forward) back to the start."""
    sideways = sum(n if d == "right" else -n for n, d in moves if d in ("left", "right"))
    ahead = sum(n if d == "forward" else -n for n, d in moves if d in ("forward", "backward"))
    back = [(n, "left" if sideways > 0 else "right") for n in _chunks(rng, abs(sideways))]
    return back + [(n, "backward" if ahead > 0 else "forward") for n in _chunks(rng, abs(ahead))]


def _turning_walk(rng: random.Random, want_return: bool, most_moves: int) -> list[str]:
    turn_share = rng.choice([0.0, 0.3, 0.4])
    sentences = [
        f"Turn {rng.choice(['left', 'right', 'around'])}." if rng.random() < turn_share
        else _take_sentence(rng.randint(1, 10), None)
        for _ in range(rng.randint(2, most_moves))
    ]
    if want_return:
        sentences += _way_back(rng, sentences)
    return sentences


def _way_back(rng: random.Random, sentences: list[str]) -> list[str]:
    """Turns and plain steps that lead the walker of `sentences` back to the start."""
    position, heading = (0, 0), (0, 1)
    for sentence in sentences:
        position, heading = _follow(sentence.rstrip("."), position, heading)
    way_back: list[str] = []
    for goal, distance in (((-1 if position[0] > 0 else 1, 0), abs(position[0])),
                           ((0, -1 if position[1] > 0 else 1), abs(position[1]))):
        if distance:
            turn = _turn_between(heading, goal)
            way_back += [f"Turn {turn}."] if turn else []
            way_back += [_take_sentence(n, None) for n in _chunks(rng, distance)]
            heading = goal
    return way_back


def _turn_between(heading: Vector, goal: Vector) -> str | None:
    for turn in ("left", "right", "around"):
        if _turned(heading, turn) == goal:
            return turn
    return None


def _chunks(rng: random.Random, distance: int) -> list[int]:
    """`distance` split into random step counts of 1-10."""
    parts = []
    while distance > 0:
        part = rng.randint(1, min(10, distance))
        parts.append(part)
        distance -= part
    return parts


def _take_sentence(steps: int, direction: str | None) -> str:
    noun = "step" if steps == 1 else "steps"
    return f"Take {steps} {noun} {direction}." if direction else f"Take {steps} {noun}."


_START = "We start at the origin (0, 0), facing the positive y-axis."

EXEMPLARS = (
    Exemplar(
        input=(
            f"{_PREFIX} Always face forward. Take 4 steps left. Take 2 steps backward. "
            f"Take 4 steps right. Take 2 steps forward.{_OPTIONS}"
        ),
        rationale=(
            f"{_START}\n"
            "(1) Always face forward: (0, 0), facing the positive y-axis.\n"
            "(2) Take 4 steps left: (-4, 0), facing the positive y-axis.\n"
            "(3) Take 2 steps backward: (-4, -2), facing the positive y-axis.\n"
            "(4) Take 4 steps right: (0, -2), facing the positive y-axis.\n"
            "(5) Take 2 steps forward: (0, 0), facing the positive y-axis.\n"
            "We end at (0, 0), which is where we started. So the answer is Yes."
        ),
        answer="Yes",
    ),
    Exemplar(
        input=f"{_PREFIX} Take 5 steps. Turn right. Take 3 steps. Turn right. Take 5 steps.{_OPTIONS}",
        rationale=(
            f"{_START}\n"
            "(1) Take 5 steps: (0, 5), facing the positive y-axis.\n"
            "(2) Turn right: (0, 5), facing the positive x-axis.\n"
            "(3) Take 3 steps: (3, 5), facing the positive x-axis.\n"
            "(4) Turn right: (3, 5), facing the negative y-axis.\n"
            "(5) Take 5 steps: (3, 0), facing the negative y-axis.\n"
            "We end at (3, 0), which is not (0, 0), so we are not back at the start. So the answer is No."
        ),
        answer="No",
    ),
    Exemplar(
        input=f"{_PREFIX} Turn left. Take 6 steps. Take 1 step. Turn around. Take 7 steps.{_OPTIONS}",
        rationale=(
            f"{_START}\n"
            "(1) Turn left: (0, 0), facing the negative x-axis.\n"
            "(2) Take 6 steps: (-6, 0), facing the negative x-axis.\n"
            "(3) Take 1 step: (-7, 0), facing the negative x-axis.\n"
            "(4) Turn around: (-7, 0), facing the positive x-axis.\n"
            "(5) Take 7 steps: (0, 0), facing the positive x-axis.\n"
            "We end at (0, 0), which is where we started. So the answer is Yes."
        ),
        answer="Yes",
    ),
)

SPEC = TaskSpec(
    name="navigate",
    description=(
        "Given a series of navigation instructions, determine whether one would end up back at the starting point."
    ),
    answer_format=AnswerFormat.YES_NO,
    exemplars=EXEMPLARS,
    expert_procedure=(
        "Track the walker on a grid: start at (0, 0) facing the positive y-axis. "
        "A turn changes only the facing direction (left and right by 90 degrees, around by 180); "
        '"Take N steps" moves N units in the facing direction, and "forward", "backward", "left" or "right" '
        "moves N units that way relative to the facing direction without turning. "
        "Write the position and facing after every instruction, then answer Yes only if the final position "
        "is exactly (0, 0)."
    ),
    common_sense=(
        "Imagine walking the route yourself and keep a running tally of how far you are ahead or behind, "
        "and left or right, of where you began. "
        'With "Always face forward" you never turn, so steps backward undo steps forward and steps left '
        "undo steps right. You are back only if both tallies end at zero."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

"""web_of_lies: "Question: Fidel lies. Jerry says Fidel tells the truth. ... Does X tell the truth?" (BBH format)."""

from __future__ import annotations

import random
import re

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

_NAME = r"([A-Za-z][\w'-]*)"
_QUESTION = re.compile(rf"\s*(?:Question:)?\s*(.+?)\s*Does {_NAME} tell the truth\?\s*", re.S | re.I)
_FACT = re.compile(rf"{_NAME} (tells the truth|lies)", re.I)
_CLAIM = re.compile(rf"{_NAME} says {_NAME} (tells the truth|lies)", re.I)
_CHAIN_LENGTH = 5  # every BBH question is a chain of five people

NAMES = (
    "Adaeze", "Bastian", "Beatriz", "Callum", "Dagny", "Dmitri", "Eamon", "Esperanza", "Farid", "Freya",
    "Gideon", "Greta", "Hamish", "Hana", "Ignacio", "Ingrid", "Jasper", "Jovana", "Kenji", "Kirsten",
    "Lionel", "Lucia", "Magnus", "Marisol", "Nikhil", "Noor", "Oksana", "Orson", "Paloma", "Priya",
    "Quentin", "Rafael", "Rosalind", "Saoirse", "Soren", "Tamsin", "Tobias", "Ulrike", "Valentin",
    "Wanda", "Xavier", "Yusuf", "Zara", "Zelda",
)


def solve(question: str) -> str | None:
    """'Yes' if the asked person tells the truth, 'No' if they lie, None if it cannot be worked out."""
    match = _QUESTION.fullmatch(question)
    if not match:
        return None
    sentences = [s.strip() for s in match.group(1).split(".") if s.strip()]
    honest = _resolve(sentences)
    if honest is None:
        return None
    asked = match.group(2).lower()
    if asked not in honest:
        return None
    return "Yes" if honest[asked] else "No"


def _resolve(sentences: list[str]) -> dict[str, bool] | None:
    """Who tells the truth (lower-cased name -> bool), or None for unknown or contradictory sentences."""
    honest: dict[str, bool] = {}
    claims: list[tuple[str, str, bool]] = []
    for sentence in sentences:
        claim, fact = _CLAIM.fullmatch(sentence), _FACT.fullmatch(sentence)
        if claim:
            speaker, subject, verdict = claim.groups()
            claims.append((speaker.lower(), subject.lower(), verdict.lower() == "tells the truth"))
        elif fact:
            name, verdict = fact.group(1).lower(), fact.group(2).lower() == "tells the truth"
            if honest.setdefault(name, verdict) != verdict:
                return None
        else:
            return None
    return _apply_claims(honest, claims)


def _apply_claims(honest: dict[str, bool], claims: list[tuple[str, str, bool]]) -> dict[str, bool] | None:
    """Settle speakers whose subject is known until nothing changes; a speaker is honest iff the claim holds."""
    pending = list(claims)
    while pending:
        settled = [c for c in pending if c[1] in honest]
        if not settled:
            break
        for speaker, subject, says_honest in settled:
            verdict = honest[subject] == says_honest
            if honest.setdefault(speaker, verdict) != verdict:
                return None
        pending = [c for c in pending if c not in settled]
    return honest


LEVELS = range(2, 11)
DEFAULT_LEVEL = _CHAIN_LENGTH
LEVEL_MEANING = "people in the chain (BBH: five)"


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """A chain of `level` distinct people (five at the default level, as in BBH): a stated fact, then each
    person speaks about the previous one."""
    people = rng.sample(NAMES, level)
    sentences = [f"{people[0]} {_verdict(rng)}."]
    for speaker, subject in zip(people[1:], people[:-1]):
        sentences.append(f"{speaker} says {subject} {_verdict(rng)}.")
    return f"Question: {' '.join(sentences)} Does {people[-1]} tell the truth?"


def _verdict(rng: random.Random) -> str:
    return rng.choice(["tells the truth", "lies"])


EXEMPLARS = (
    Exemplar(
        input=(
            "Question: Tobias lies. Greta says Tobias lies. Dmitri says Greta lies. Priya says Dmitri tells the "
            "truth. Xavier says Priya lies. Does Xavier tell the truth?"
        ),
        rationale=(
            "(1) Tobias lies. So Tobias lies.\n"
            "(2) Greta says Tobias lies. From (1) Tobias does lie, so Greta's statement is true and Greta tells "
            "the truth.\n"
            "(3) Dmitri says Greta lies. From (2) Greta tells the truth, so Dmitri's statement is false and "
            "Dmitri lies.\n"
            "(4) Priya says Dmitri tells the truth. From (3) Dmitri lies, so Priya's statement is false and "
            "Priya lies.\n"
            "(5) Xavier says Priya lies. From (4) Priya does lie, so Xavier's statement is true and Xavier "
            "tells the truth.\n"
            "The question asks whether Xavier tells the truth; by (5) he does. So the answer is Yes."
        ),
        answer="Yes",
    ),
    Exemplar(
        input=(
            "Question: Noor tells the truth. Farid says Noor tells the truth. Ingrid says Farid tells the truth. "
            "Kenji says Ingrid lies. Zelda says Kenji tells the truth. Does Zelda tell the truth?"
        ),
        rationale=(
            "(1) Noor tells the truth. So Noor tells the truth.\n"
            "(2) Farid says Noor tells the truth. From (1) that is true, so Farid tells the truth.\n"
            "(3) Ingrid says Farid tells the truth. From (2) that is true, so Ingrid tells the truth.\n"
            "(4) Kenji says Ingrid lies. From (3) Ingrid tells the truth, so Kenji's statement is false and "
            "Kenji lies.\n"
            "(5) Zelda says Kenji tells the truth. From (4) Kenji lies, so Zelda's statement is false and Zelda "
            "lies.\n"
            "The question asks whether Zelda tells the truth; by (5) she lies. So the answer is No."
        ),
        answer="No",
    ),
    Exemplar(
        input=(
            "Question: Magnus lies. Hana says Magnus tells the truth. Orson says Hana lies. Lucia says Orson "
            "lies. Rafael says Lucia lies. Does Rafael tell the truth?"
        ),
        rationale=(
            "(1) Magnus lies. So Magnus lies.\n"
            "(2) Hana says Magnus tells the truth. From (1) Magnus lies, so Hana's statement is false and Hana "
            "lies.\n"
            "(3) Orson says Hana lies. From (2) Hana does lie, so Orson's statement is true and Orson tells the "
            "truth.\n"
            "(4) Lucia says Orson lies. From (3) Orson tells the truth, so Lucia's statement is false and Lucia "
            "lies.\n"
            "(5) Rafael says Lucia lies. From (4) Lucia does lie, so Rafael's statement is true and Rafael tells "
            "the truth.\n"
            "The question asks whether Rafael tells the truth; by (5) he does. So the answer is Yes."
        ),
        answer="Yes",
    ),
)

SPEC = TaskSpec(
    name="web_of_lies",
    description="Evaluate a random boolean function expressed as a word problem.",
    answer_format=AnswerFormat.YES_NO,
    exemplars=EXEMPLARS,
    expert_procedure=(
        "Number the statements and start from the one that states a fact outright (\"X lies\" or "
        "\"X tells the truth\"). "
        "For each following statement \"Y says X tells the truth / lies\", compare the claim with what is "
        "already known about X: if the claim matches, Y tells the truth, otherwise Y lies. "
        "Carry the result forward one person at a time, writing each conclusion explicitly, until you reach "
        "the person asked about."
    ),
    common_sense=(
        "A truthful person's statements are correct and a liar's statements are wrong. "
        "Follow the chain of who vouches for whom: agreeing with a liar or calling an honest person a liar "
        "makes you a liar. Each person's honesty is settled by the one before them."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

"""object_counting: "I have a chair, two potatoes, ... How many vegetables do I have?" (BBH format).

The lexicon holds exactly the nouns BBH uses, each with its plural and category.
"""

from __future__ import annotations

import random
import re

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

# category (as asked in the question) -> (singular, plural) nouns
LEXICON: dict[str, tuple[tuple[str, str], ...]] = {
    "fruits": (
        ("apple", "apples"), ("banana", "bananas"), ("blackberry", "blackberries"), ("grape", "grapes"),
        ("nectarine", "nectarines"), ("orange", "oranges"), ("peach", "peaches"), ("plum", "plums"),
        ("raspberry", "raspberries"), ("strawberry", "strawberries"),
    ),
    "vegetables": (
        ("cabbage", "cabbages"), ("carrot", "carrots"), ("cauliflower", "cauliflowers"),
        ("garlic", "garlics"), ("head of broccoli", "heads of broccoli"), ("lettuce head", "lettuce heads"),
        ("onion", "onions"), ("potato", "potatoes"), ("stalk of celery", "stalks of celery"), ("yam", "yams"),
    ),
    "animals": (
        ("bear", "bears"), ("cat", "cats"), ("chicken", "chickens"), ("cow", "cows"), ("dog", "dogs"),
        ("donkey", "donkeys"), ("duck", "ducks"), ("fish", "fish"), ("frog", "frogs"), ("goat", "goats"),
        ("mouse", "mice"), ("pig", "pigs"), ("rabbit", "rabbits"), ("snail", "snails"), ("snake", "snakes"),
    ),
    "musical instruments": (
        ("accordion", "accordions"), ("clarinet", "clarinets"), ("drum", "drums"), ("flute", "flutes"),
        ("piano", "pianos"), ("trombone", "trombones"), ("trumpet", "trumpets"), ("violin", "violins"),
    ),
    "objects": (
        ("bed", "beds"), ("car", "cars"), ("chair", "chairs"), ("couch", "couches"), ("fridge", "fridges"),
        ("lamp", "lamps"), ("microwave", "microwaves"), ("oven", "ovens"), ("stove", "stoves"),
        ("table", "tables"), ("toaster", "toasters"),
    ),
}
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}
_CATEGORY_OF_NOUN = {
    noun: category for category, nouns in LEXICON.items() for pair in nouns for noun in pair
}
_QUESTION = re.compile(r"\s*I have (.+?)\.\s*How many ([a-z ]+?) do I have\?\s*", re.S | re.I)
_ITEM_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
_ITEM = re.compile(r"(\w+)\s+(.+)")
_GENERATED_QUANTITIES = ("two", "three", "four", "five")


def solve(question: str) -> str | None:
    """How many of the listed things belong to the asked category; None if any part is unknown."""
    match = _QUESTION.fullmatch(question)
    if not match:
        return None
    category = match.group(2).lower()
    if category not in LEXICON:
        return None
    total = 0
    for item in _ITEM_SEPARATOR.split(match.group(1).strip()):
        counted = _parse_item(item)
        if counted is None:
            return None
        quantity, item_category = counted
        total += quantity if item_category == category else 0
    return str(total)


def _parse_item(item: str) -> tuple[int, str] | None:
    """(quantity, category) of an item like "two heads of broccoli", or None if unknown."""
    match = _ITEM.fullmatch(item.strip().lower())
    if not match:
        return None
    quantity_word, noun = match.groups()
    quantity = _quantity(quantity_word)
    category = _CATEGORY_OF_NOUN.get(" ".join(noun.split()))
    if quantity is None or category is None:
        return None
    return quantity, category


def _quantity(word: str) -> int | None:
    """The number a quantity word ("a", "three") or small numeral ("3") stands for."""
    if re.fullmatch(r"[0-9]{1,5}", word):
        return int(word)
    return NUMBER_WORDS.get(word)


LEVELS = range(2, 13)
DEFAULT_LEVEL = 12  # up to 12 listed things, as in BBH
LEVEL_MEANING = "the most things listed in a question (each lists 2 to level)"


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """2 to `level` distinct things (2-12 at the default level), at most 10 of the asked category and
    sometimes up to 5 distractors."""
    category = rng.choice(sorted(LEXICON))
    wanted = rng.sample(LEXICON[category], rng.randint(1, min(10, len(LEXICON[category]), level)))
    others = [pair for other, nouns in LEXICON.items() if other != category for pair in nouns]
    room = level - len(wanted)
    distractors = rng.sample(others, rng.randint(0, min(room, 5))) if rng.random() < 0.5 else []
    if len(wanted) + len(distractors) < 2:
        distractors = rng.sample(others, 1)
    items = [_phrase(rng, pair) for pair in wanted + distractors]
    rng.shuffle(items)
    return f"I have {', '.join(items[:-1])}, and {items[-1]}. How many {category} do I have?"


def _phrase(rng: random.Random, pair: tuple[str, str]) -> str:
    singular, plural = pair
    if rng.random() < 0.75:
        return f"{'an' if singular[0] in 'aeiou' else 'a'} {singular}"
    return f"{rng.choice(_GENERATED_QUANTITIES)} {plural}"


EXEMPLARS = (
    Exemplar(
        input="I have a goat, two violins, a duck, three snails, and a piano. How many animals do I have?",
        rationale=(
            "We list the animals in the list with their quantities in parentheses:\n"
            "- goat (1)\n- duck (1)\n- snails (3)\n"
            "The violins and the piano are musical instruments, not animals.\n"
            "Adding the numbers in parentheses: 1 + 1 + 3 = 5. So the answer is 5."
        ),
        answer="5",
    ),
    Exemplar(
        input="I have two toasters, a lamp, a yam, an oven, and four chairs. How many objects do I have?",
        rationale=(
            "We list the objects in the list with their quantities in parentheses:\n"
            "- toasters (2)\n- lamp (1)\n- oven (1)\n- chairs (4)\n"
            "The yam is a vegetable, not an object.\n"
            "Adding the numbers in parentheses: 2 + 1 + 1 + 4 = 8. So the answer is 8."
        ),
        answer="8",
    ),
    Exemplar(
        input=(
            "I have a cabbage, a peach, three potatoes, an onion, a stalk of celery, and two heads of broccoli. "
            "How many vegetables do I have?"
        ),
        rationale=(
            "We list the vegetables in the list with their quantities in parentheses:\n"
            "- cabbage (1)\n- potatoes (3)\n- onion (1)\n- celery (1)\n- broccoli (2)\n"
            "The peach is a fruit, not a vegetable.\n"
            "Adding the numbers in parentheses: 1 + 3 + 1 + 1 + 2 = 8. So the answer is 8."
        ),
        answer="8",
    ),
)

SPEC = TaskSpec(
    name="object_counting",
    description="Questions that involve enumerating objects and asking the model to count them.",
    answer_format=AnswerFormat.INTEGER,
    exemplars=EXEMPLARS,
    expert_procedure=(
        "First read the category asked for at the end of the question. "
        "Go through the list item by item, decide whether each item belongs to that category, and for each "
        "one that does write its quantity in parentheses (\"a\"/\"an\" means 1, \"two\" means 2, and so on). "
        "Ignore items of other categories, then add up the quantities in parentheses."
    ),
    common_sense=(
        "Picture putting the things of the asked kind on a table and counting them. "
        "Plural items count as many as their number word says, and things of another kind stay off the table."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

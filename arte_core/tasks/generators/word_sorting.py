"""word_sorting: "Sort the following words alphabetically: List: ..." (BBH format)."""

from __future__ import annotations

import random
import re

from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Exemplar
from arte_core.tasks.generators.spec import TaskSpec

_PREFIX = "Sort the following words alphabetically: List:"
_QUESTION = re.compile(r"\s*Sort the following words alphabetically:\s*List:\s*(.+?)\s*", re.S | re.I)
_MIN_WORDS, _MAX_WORDS = 2, 20

# Our own vocabulary: everyday words, several sharing first letters or prefixes so that
# sorting often has to look past the first letter.
VOCABULARY = tuple(
    """
    abbey absent acorn actor admiral advice aerial agenda alarm album alcove almond alpine
    amber anchor angle ankle antler apron arcade arch arrow ashore aspen atlas attic autumn
    badge bakery balcony ballad bamboo banjo banner barley barrel basil basket beacon beetle
    bellow bench biscuit blanket blossom bonnet border bottle bramble breeze bridge bristle
    bucket buffalo bugle butter cabin cactus camel canal candle canoe canvas carbon cargo
    carpet castle cedar cellar cement chapel cherry chimney cider circus citrus clover cobalt
    collar comet copper cotton cradle crater crayon cricket crystal cushion dagger daisy
    dancer decade delta denim desert dinner dolphin domino donkey dragon drizzle dune eagle
    easel echo eclipse elbow ember emerald engine envoy ermine estuary falcon fathom feather
    fender ferry fiddle figure fjord flannel flute fossil fountain freckle frost furnace
    gadget galaxy gallon garden garlic garnet gazebo geyser giant ginger glacier goblet
    gondola granite gravel guitar gutter habitat hammer hamlet harbor harvest hazel helmet
    heron hickory hollow honey horizon hornet hurdle igloo imprint inkwell insect island
    ivory jacket jaguar jasmine jester jigsaw journal jungle juniper kayak kernel kettle
    kitten knapsack knuckle ladder lagoon lantern lattice lava ledger lemon lentil lettuce
    lilac linen lizard lobster locket lumber magnet mallet mango maple marble market meadow
    melody meteor mitten monsoon mosaic muffin mustard napkin nectar needle nickel nomad
    nutmeg oasis oatmeal object ocean olive onion opal orbit orchard otter oyster paddle
    palace pantry parcel parsley pebble pelican pencil pepper pillow pirate plaza plume
    pocket poplar potato prism puddle pumpkin quarry quartz quill quilt quiver rabbit radish
    raft raisin rattle raven ribbon riddle ripple rocket rubble saddle saffron salmon sandal
    satchel scarf shadow shovel signal silver sketch sleigh socket sparrow spindle sponge
    statue summit tablet tadpole tangle teapot temple thicket thistle thunder timber tinsel
    toffee tractor trellis tulip tunnel turnip umber umbrella unicorn utensil valley velvet
    vessel violet volcano voyage wagon walnut walrus warden weasel whisker willow window
    wizard wombat yarrow yodel yogurt zenith zephyr zipper
    """.split()
)


def solve(question: str) -> str | None:
    """The listed words sorted alphabetically, joined by single spaces; None if not a sort question."""
    match = _QUESTION.fullmatch(question)
    if not match:
        return None
    words = match.group(1).split()
    return " ".join(sorted(words, key=lambda word: (word.lower(), word)))


LEVELS = range(_MIN_WORDS, _MAX_WORDS + 1)
DEFAULT_LEVEL = _MAX_WORDS  # BBH's lists of up to 20 words
LEVEL_MEANING = "the most words in a list (each list has 2 to level words)"


def generate_question(rng: random.Random, level: int = DEFAULT_LEVEL) -> str:
    """A list of 2 to `level` distinct words from our vocabulary (2-20 at the default level)."""
    count = rng.randint(_MIN_WORDS, level)
    return f"{_PREFIX} {' '.join(rng.sample(VOCABULARY, count))}"


EXEMPLARS = (
    Exemplar(
        input="Sort the following words alphabetically: List: lantern quiver banjo lattice",
        rationale=(
            'Compare the first letters: "lantern": "l" (12). "quiver": "q" (17). "banjo": "b" (2). '
            '"lattice": "l" (12). So far: (2) "banjo" < (12) ["lantern" ? "lattice"] < (17) "quiver".\n'
            'Break the tie ["lantern" ? "lattice"] with the second letters: "lantern": "a" (1). '
            '"lattice": "a" (1). Still tied.\n'
            'Third letters: "lantern": "n" (14). "lattice": "t" (20). So "lantern" < "lattice".\n'
            'Hence "banjo" < "lantern" < "lattice" < "quiver". So the answer is banjo lantern lattice quiver.'
        ),
        answer="banjo lantern lattice quiver",
    ),
    Exemplar(
        input="Sort the following words alphabetically: List: thistle meadow cobalt harbor",
        rationale=(
            'Compare the first letters: "thistle": "t" (20). "meadow": "m" (13). "cobalt": "c" (3). '
            '"harbor": "h" (8). All first letters differ, so the order is (3) "cobalt" < (8) "harbor" < '
            '(13) "meadow" < (20) "thistle". So the answer is cobalt harbor meadow thistle.'
        ),
        answer="cobalt harbor meadow thistle",
    ),
    Exemplar(
        input="Sort the following words alphabetically: List: pebble walnut pantry pelican anchor",
        rationale=(
            'Compare the first letters: "pebble": "p" (16). "walnut": "w" (23). "pantry": "p" (16). '
            '"pelican": "p" (16). "anchor": "a" (1). So far: (1) "anchor" < (16) ["pebble" ? "pantry" ? '
            '"pelican"] < (23) "walnut".\n'
            'Second letters of the tied words: "pebble": "e" (5). "pantry": "a" (1). "pelican": "e" (5). '
            'So "pantry" < ["pebble" ? "pelican"].\n'
            'Third letters: "pebble": "b" (2). "pelican": "l" (12). So "pebble" < "pelican".\n'
            'Hence "anchor" < "pantry" < "pebble" < "pelican" < "walnut". '
            "So the answer is anchor pantry pebble pelican walnut."
        ),
        answer="anchor pantry pebble pelican walnut",
    ),
)

SPEC = TaskSpec(
    name="word_sorting",
    description="Sort a list of words.",
    answer_format=AnswerFormat.TEXT,
    exemplars=EXEMPLARS,
    expert_procedure=(
        "Write down each word with its first letter and that letter's position in the alphabet, "
        "then group the words by first letter in alphabetical order. "
        "Inside any group that ties, compare the second letters, then the third, and so on; a word that "
        "is a prefix of another comes first. "
        "Finally list every word exactly once, spelled exactly as given, separated by single spaces."
    ),
    common_sense=(
        "Put the words in the order a dictionary would list them. "
        "Look at the first letter, and only when two words start the same way look further along. "
        "Check at the end that no word was dropped or repeated."
    ),
    solve=solve,
    generate_question=generate_question,
    levels=LEVELS,
    default_level=DEFAULT_LEVEL,
    level_meaning=LEVEL_MEANING,
)

"""Built-in tasks: solvers agree with BBH, generation is seeded and exact, exemplars are sound."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest

from arte_core.errors import ArteError
from arte_core.tasks import AnswerFormat, load_task
from arte_core.tasks.bbh import parse_cot_prompt
from arte_core.tasks.builtin import BUILTIN_TASKS, POOL_MARGIN, SPEC_OF

from paths import require_bbh

EXPECTED_FORMATS = {
    "boolean_expressions": AnswerFormat.BOOLEAN,
    "multistep_arithmetic_two": AnswerFormat.INTEGER,
    "word_sorting": AnswerFormat.TEXT,
    "object_counting": AnswerFormat.INTEGER,
    "dyck_languages": AnswerFormat.TEXT,
    "navigate": AnswerFormat.YES_NO,
    "web_of_lies": AnswerFormat.YES_NO,
}
NAMES = sorted(EXPECTED_FORMATS)

_NAV_PREFIX = "If you follow these instructions, do you return to the starting point? "
_NAV_OPTIONS = "\nOptions:\n- Yes\n- No"
_DYCK_PREFIX = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: "
_SORT_PREFIX = "Sort the following words alphabetically: List: "

# The textual shape of every BBH question of each task; generated questions must have it too.
_GROUP = r"\(-?\d(?: [-+*] -?\d){3}\)"
_OC_ITEM = r"(?:a|an|two|three|four|five) [a-z]+(?: [a-z]+)*"
_NAV_STEP = r"Take (?:1 step|(?:[2-9]|10) steps)"
_NAV_SENTENCE = rf"(?:{_NAV_STEP}(?: (?:forward|backward|left|right))?|Turn (?:left|right|around))\."
_WOL_NAME = r"[A-Z][a-z]+"
_WOL_VERDICT = r"(?:tells the truth|lies)"
BBH_SHAPES = {
    "boolean_expressions": r"(?:(?:not|True|False|and|or|\(|\)) ){8}is",
    "multistep_arithmetic_two": rf"\({_GROUP} [-+*] {_GROUP}\) =",
    "word_sorting": re.escape(_SORT_PREFIX) + r"[a-z&']+(?: [a-z&']+){1,19}",
    "object_counting": (
        rf"I have {_OC_ITEM}(?:, {_OC_ITEM})*, and {_OC_ITEM}\. "
        r"How many (?:fruits|vegetables|animals|musical instruments|objects) do I have\?"
    ),
    "dyck_languages": re.escape(_DYCK_PREFIX) + r"[\[\](){}<>](?: [\[\](){}<>])*",
    "navigate": (
        re.escape(_NAV_PREFIX) + rf"(?:Always face forward\. )?{_NAV_SENTENCE}(?: {_NAV_SENTENCE}){{1,9}}"
        + re.escape(_NAV_OPTIONS)
    ),
    "web_of_lies": (
        rf"Question: {_WOL_NAME} {_WOL_VERDICT}\.(?: {_WOL_NAME} says {_WOL_NAME} {_WOL_VERDICT}\.){{4}} "
        rf"Does {_WOL_NAME} tell the truth\?"
    ),
}


_MIXED_THINGS = "I have a flute, two heads of broccoli, a cow, and three mice."


def _navigate(instructions: str) -> str:
    return f"{_NAV_PREFIX}{instructions}{_NAV_OPTIONS}"


@pytest.fixture(scope="module")
def tasks():
    return {name: BUILTIN_TASKS[name](0) for name in NAMES}


def _bbh_rows(name: str) -> list[dict]:
    path = require_bbh() / "tasks" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))["examples"]


# --- registry ------------------------------------------------------------------------------------


def test_registry_holds_the_required_tasks_with_their_answer_formats(tasks):
    assert set(NAMES) <= set(BUILTIN_TASKS)
    for name, task in tasks.items():
        assert task.name == name
        assert task.answer_format is EXPECTED_FORMATS[name]
        assert task.source == "builtin"
        assert task.description.strip() and "\n" not in task.description
        assert task.solver is not None


@pytest.mark.parametrize("name", NAMES)
def test_load_task_builds_each_builtin_task(name):
    task = load_task(name)
    assert task.name == name and len(task.examples) == 300
    assert load_task(name, seed=7).examples == BUILTIN_TASKS[name](7).examples


def test_load_task_rejects_an_unknown_name_and_lists_the_builtin_tasks():
    with pytest.raises(ArteError) as error:
        load_task("nope")
    message = str(error.value)
    assert "nope" in message
    for name in NAMES:
        assert name in message


# --- solvers against BBH -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_solver_reproduces_every_bbh_target(name, tasks):
    task = tasks[name]
    rows = _bbh_rows(name)
    assert len(rows) == 250
    wrong = [
        (row["input"], row["target"], task.solver(row["input"]))
        for row in rows
        if task.normalise(task.solver(row["input"])) != task.normalise(row["target"])
    ]
    assert wrong == []


@pytest.mark.parametrize("name", NAMES)
def test_bbh_shape_pattern_matches_every_bbh_question(name):
    unmatched = [row["input"] for row in _bbh_rows(name) if not re.fullmatch(BBH_SHAPES[name], row["input"])]
    assert unmatched == []


@pytest.mark.parametrize(
    "name, question, expected",
    [
        ("boolean_expressions", "not ( True ) and ( True ) is", "False"),
        ("boolean_expressions", "True or False and False is", "True"),  # "and" binds tighter than "or"
        ("boolean_expressions", "not not not ( False or False ) is", "True"),
        ("boolean_expressions", "( True and not True ) or not True is", "False"),
        ("multistep_arithmetic_two", "((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =", "24"),
        # (7 - (-6) + 1) * (-4 - (-12) + 0) = 14 * 8
        ("multistep_arithmetic_two", "((7 - 3 * -2 + 1) * (-4 - -6 * 2 + 0)) =", "112"),
        ("multistep_arithmetic_two", "((9 - 4 - 3 - 2) + (0 * -7 * 8 - 1)) =", "-1"),
        ("multistep_arithmetic_two", "2 - 3 - 4 =", "-5"),
        ("word_sorting", _SORT_PREFIX + "pear apple peach", "apple peach pear"),
        ("word_sorting", _SORT_PREFIX + "zebra it&t ant antelope", "ant antelope it&t zebra"),
        ("object_counting", _MIXED_THINGS + " How many animals do I have?", "4"),
        ("object_counting", _MIXED_THINGS + " How many vegetables do I have?", "2"),
        ("object_counting", "I have an oven, and five fish. How many fruits do I have?", "0"),
        ("dyck_languages", _DYCK_PREFIX + "[ { ( ) < >", "} ]"),
        ("dyck_languages", _DYCK_PREFIX + "< [ ] ( { } )", ">"),
        ("dyck_languages", _DYCK_PREFIX + "( ( [ < > ] { [ ]", "} ) )"),
        ("navigate", _navigate("Take 3 steps. Turn around. Take 3 steps."), "Yes"),
        ("navigate", _navigate("Always face forward. Take 2 steps left. Take 2 steps forward."), "No"),
        ("navigate", _navigate("Take 1 step. Turn right. " * 3 + "Take 1 step."), "Yes"),  # a square
        # Steps to the side do not turn the walker: left, forward, right ends at (0, 1).
        ("navigate", _navigate("Take 1 step left. Take 1 step forward. Take 1 step right."), "No"),
        ("web_of_lies", "Question: Ann lies. Bob says Ann lies. Does Bob tell the truth?", "Yes"),
        ("web_of_lies", "Question: Ann lies. Bob says Ann tells the truth. Does Bob tell the truth?", "No"),
        # Ann is honest, so Bob (calling her a liar) lies, so Cy (calling Bob a liar) is honest.
        ("web_of_lies", "Question: Ann tells the truth. Bob says Ann lies. Cy says Bob lies. Does Cy tell the truth?",
         "Yes"),
    ],
)
def test_solver_literal_cases(name, question, expected, tasks):
    assert tasks[name].solver(question) == expected


@pytest.mark.parametrize(
    "name, question",
    [
        ("boolean_expressions", "True and is"),
        ("boolean_expressions", "( True or False is"),
        ("multistep_arithmetic_two", "((1 + 2) * 3 ="),
        ("multistep_arithmetic_two", "((6 / 2) + 1) ="),
        ("word_sorting", "Sort these please: b a"),
        ("object_counting", "I have a guitar, and a drum. How many musical instruments do I have?"),
        ("object_counting", "I have a cat, and a dog. How many planets do I have?"),
        ("dyck_languages", _DYCK_PREFIX + "( ]"),
        ("dyck_languages", _DYCK_PREFIX + "( )"),  # nothing left to close
        ("navigate", _navigate("Take 3 steps. Jump twice.")),
        ("web_of_lies", "Question: Ann lies. Bob says Ann lies. Does Cy tell the truth?"),
        ("web_of_lies", "Question: Ann lies. Ann tells the truth. Does Ann tell the truth?"),
    ],
)
def test_solver_returns_none_for_malformed_questions(name, question, tasks):
    assert tasks[name].solver(question) is None


_GARBAGE = [
    "", "   ", "hello", "is", "=", "(((", ")", "Input:", "Question:", "Options:\n- Yes\n- No", "²", "1/0",
    "not " * 3000, "(" * 3000 + "True", "- " * 3000 + "1 =", "9" * 5000 + " =", "* 3 =",
    "I have . How many fruits do I have?", "Does  tell the truth?", "Take 99999999999999999999 steps.",
]


@pytest.mark.parametrize("name", NAMES)
def test_solver_returns_none_on_garbage_and_never_raises(name, tasks):
    solver = tasks[name].solver
    assert solver("hello") is None
    assert solver("") is None
    for junk in _GARBAGE:
        assert solver(junk) is None or isinstance(solver(junk), str)


@pytest.mark.parametrize("name", NAMES)
def test_solver_never_raises_on_truncated_or_corrupted_questions(name, tasks):
    task = tasks[name]
    rng = random.Random(0)
    for example in task.examples[:8]:
        text = example.input
        variants = [text[:cut] for cut in range(len(text))]
        variants += [_corrupt(rng, text) for _ in range(40)]
        for variant in variants:
            answer = task.solver(variant)
            assert answer is None or isinstance(answer, str)


def _corrupt(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice(["", " ", "(", ")", "-", "*", ".", "x", "9", "\n", chars[i] * 2])
    return "".join(chars)


# --- generated examples ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_examples_are_deterministic_by_seed(name, tasks):
    factory = BUILTIN_TASKS[name]
    assert factory(0).examples == tasks[name].examples
    assert factory(1).examples != tasks[name].examples


@pytest.mark.parametrize("name", NAMES)
def test_examples_are_300_distinct_questions_labelled_by_the_solver(name, tasks):
    task = tasks[name]
    inputs = [e.input for e in task.examples]
    assert len(task.examples) == 300
    assert len(set(inputs)) == 300
    assert not {x.input for x in task.exemplars} & set(inputs)
    for example in task.examples:
        assert example.target == task.solver(example.input)
        assert task.normalise(example.target) is not None


@pytest.mark.parametrize("name", NAMES)
def test_generated_questions_have_the_bbh_shape(name, tasks):
    unmatched = [e.input for e in tasks[name].examples if not re.fullmatch(BBH_SHAPES[name], e.input)]
    assert unmatched == []


@pytest.mark.parametrize("name", ["boolean_expressions", "navigate", "web_of_lies"])
def test_two_label_tasks_are_roughly_balanced(name, tasks):
    targets = [e.target for e in tasks[name].examples]
    for label in set(targets):
        assert 0.3 <= targets.count(label) / len(targets) <= 0.7
    assert len(set(targets)) == 2


def test_text_targets_follow_bbh_conventions(tasks):
    for example in tasks["word_sorting"].examples:
        words = example.input.removeprefix(_SORT_PREFIX).split()
        assert example.target == " ".join(sorted(words))
    for example in tasks["dyck_languages"].examples:
        assert re.fullmatch(r"[\])}>](?: [\])}>])*", example.target)


# --- exemplars and techniques -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_exemplars_end_with_their_answer_and_the_solver_agrees(name, tasks):
    task = tasks[name]
    assert len(task.exemplars) == 3
    assert len({x.input for x in task.exemplars}) == 3
    for exemplar in task.exemplars:
        assert exemplar.rationale.endswith(f"So the answer is {exemplar.answer}.")
        assert exemplar.answer == task.solver(exemplar.input)
        assert re.fullmatch(BBH_SHAPES[name], exemplar.input)


@pytest.mark.parametrize("name", NAMES)
def test_exemplars_are_not_copied_from_bbh_cot_prompts(name, tasks):
    path = require_bbh() / "cot-prompts" / f"{name}.txt"
    if not path.is_file():
        pytest.skip(f"BBH cot-prompt not found at {path}")
    _, bbh_exemplars = parse_cot_prompt(path.read_text(encoding="utf-8"), path)
    bbh_questions = {x.input.strip() for x in bbh_exemplars}
    assert not bbh_questions & {x.input.strip() for x in tasks[name].exemplars}
    bbh_rows = {row["input"].strip() for row in _bbh_rows(name)}
    assert not bbh_rows & {x.input.strip() for x in tasks[name].exemplars}


@pytest.mark.parametrize("name", NAMES)
def test_techniques_are_two_to_five_sentences_each(name, tasks):
    techniques = tasks[name].extra["techniques"]
    assert set(techniques) == {"expert_procedure", "common_sense"}
    for text in techniques.values():
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", text.strip())
        assert 2 <= len(sentences) <= 5, text
        assert text.strip().endswith(".")


# --- preference and test splits ------------------------------------------------------------------


def _hand_task(targets: list[str], answer_format: AnswerFormat, inputs: list[str] | None = None):
    from arte_core.tasks import Example, Exemplar, Task

    inputs = inputs or [f"question number {i}" for i in range(len(targets))]
    return Task(name="hand", description="A task written by a test.", answer_format=answer_format,
                exemplars=[Exemplar(inputs[0], "It is so.", targets[0])],
                examples=[Example(i, t) for i, t in zip(inputs, targets)])


def _label_counts(task, examples) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        label = task.normalise(example.target)
        counts[label] = counts.get(label, 0) + 1
    return counts


def _within_one_item(task, examples, labels) -> bool:
    counts = _label_counts(task, examples)
    shares = [counts.get(label, 0) for label in labels]
    return set(counts) <= set(labels) and max(shares) - min(shares) <= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("targets, answer_format, labels", [
    (["Yes"] * 80 + ["No"] * 20, AnswerFormat.YES_NO, ("No", "Yes")),  # skewed 4:1
    (["True"] * 30 + ["False"] * 90, AnswerFormat.BOOLEAN, ("False", "True")),
    (["(A)"] * 50 + ["(B)"] * 20 + ["(C)"] * 15, AnswerFormat.CHOICE, ("(A)", "(B)", "(C)")),
    (["valid"] * 70 + ["invalid"] * 25, AnswerFormat.TEXT, ("invalid", "valid")),  # an inferred label set
])
def test_a_stratified_split_balances_the_labels(targets, answer_format, labels, seed):
    task = _hand_task(targets, answer_format)
    assert task.split_labels(task.pool()) == labels
    for n_pref, n_test in [(12, 24), (7, 11), (9, 10)]:
        pref, test = task.split(n_pref, n_test, seed)
        assert (len(pref), len(test)) == (n_pref, n_test)
        assert _within_one_item(task, pref, labels), _label_counts(task, pref)
        assert _within_one_item(task, test, labels), _label_counts(task, test)


@pytest.mark.parametrize("name", ["boolean_expressions", "navigate", "web_of_lies"])
def test_builtin_two_label_tasks_get_balanced_splits(name, tasks):
    task = tasks[name]
    pref, test = task.split(12, 24, 0)
    assert _label_counts(task, pref) == {label: 6 for label in task.split_labels(task.pool())}
    assert _label_counts(task, test) == {label: 12 for label in task.split_labels(task.pool())}


@pytest.mark.parametrize("seed", [0, 1])
def test_a_rare_label_is_shared_by_both_splits_and_the_others_fill_them(seed):
    task = _hand_task(["Yes"] * 60 + ["No"] * 6, AnswerFormat.YES_NO)  # the exemplar takes a Yes
    pref, test = task.split(12, 24, seed)
    assert (len(pref), len(test)) == (12, 24)  # the splits keep their sizes
    # 6 No for 36 items: in proportion to the split sizes, not all in the preference split
    assert (_label_counts(task, pref)["No"], _label_counts(task, test)["No"]) == (2, 4)


def test_open_answer_tasks_keep_a_seeded_random_split():
    task = _hand_task([str(i * 7) for i in range(60)], AnswerFormat.INTEGER)
    assert task.split_labels(task.pool()) == ()
    assert task.split(10, 20, 3) == task.split(10, 20, 3)
    assert task.split(10, 20, 3) != task.split(10, 20, 4)


@pytest.mark.parametrize("answer_format, targets", [(AnswerFormat.YES_NO, ["Yes", "No"]),
                                                    (AnswerFormat.INTEGER, ["1", "2", "3"])])
def test_duplicates_never_land_in_both_splits(answer_format, targets):
    from arte_core.tasks.base import input_key

    distinct = [f"Is question {i} a copy?" for i in range(20)]
    # every question three times, as in the file and with other case and spacing
    inputs = distinct + [q.upper() for q in distinct] + [q.replace(" ", "   ") for q in distinct]
    task = _hand_task([targets[i % len(targets)] for i in range(60)], answer_format, inputs)
    for seed in range(5):
        pref, test = task.split(8, 30, seed)
        keys = [input_key(e.input) for e in pref + test]
        assert len(keys) == len(set(keys)), "an input is in both splits or twice in one"
        assert input_key(distinct[0]) not in keys  # the seed exemplar stays out, whatever its spelling
    assert len(task.pool()) == 19


def test_a_split_too_large_for_the_distinct_pool_is_refused():
    inputs = [f"q{i % 5}" for i in range(40)]  # 40 rows, 5 distinct questions
    task = _hand_task(["Yes", "No"] * 20, AnswerFormat.YES_NO, inputs)
    with pytest.raises(ArteError, match="4 usable examples .* lower score.n_pref"):
        task.split(4, 10, 0)


# --- difficulty levels and pool size (issue 16) ---------------------------------------------------

# sha256 of "input\ttarget" lines of the 300 examples, computed before levels existed: the default level
# must keep every stored run's questions.
DEFAULT_LEVEL_DIGESTS = {
    ("boolean_expressions", 0): "9f68b6012cc5e99e", ("boolean_expressions", 7): "4a1b6781bbaf4a49",
    ("dyck_languages", 0): "64b6d46080219261", ("dyck_languages", 7): "94cc05cc67290da7",
    ("multistep_arithmetic_two", 0): "2eeac9e5c0fe45fa", ("multistep_arithmetic_two", 7): "a24b8da8b7b6e689",
    ("navigate", 0): "6b2667d8b3d1ff6a", ("navigate", 7): "a162980b4b126d2d",
    ("object_counting", 0): "4987a774769267a5", ("object_counting", 7): "4c70f3155e19cbd2",
    ("web_of_lies", 0): "4b9a5236b0922319", ("web_of_lies", 7): "d48f2995e83c3b00",
    ("word_sorting", 0): "b42218579c269c15", ("word_sorting", 7): "b68d418303bf6c4e",
}


def _digest(examples) -> str:
    import hashlib

    return hashlib.sha256("\n".join(f"{e.input}\t{e.target}" for e in examples).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name, seed", sorted(DEFAULT_LEVEL_DIGESTS))
def test_the_default_level_yields_the_questions_stored_runs_were_made_from(name, seed):
    spec = SPEC_OF[name]
    assert _digest(BUILTIN_TASKS[name](seed).examples) == DEFAULT_LEVEL_DIGESTS[name, seed]
    assert _digest(BUILTIN_TASKS[name](seed, spec.default_level).examples) == DEFAULT_LEVEL_DIGESTS[name, seed]
    assert _digest(load_task(name, seed=seed, difficulty=0).examples) == DEFAULT_LEVEL_DIGESTS[name, seed]


def _sizes(name: str, level: int) -> list[int]:
    """A measure of each question's size at `level`, in the unit the level counts."""
    questions = [e.input for e in BUILTIN_TASKS[name](0, level, 0).examples]
    if name == "boolean_expressions":
        return [len(q.split()) - 1 for q in questions]  # tokens before "is"
    if name == "multistep_arithmetic_two":
        return [len(re.findall(r"-?\d+", q.split(") ")[0])) for q in questions]  # numbers in the first group
    if name == "word_sorting":
        return [len(q.split("List:")[1].split()) for q in questions]
    if name == "object_counting":
        return [q.count(",") + 1 for q in questions]  # "a, b, and c": items
    if name == "web_of_lies":
        return [len(re.findall(r"\.", q.split(" Does ")[0])) for q in questions]  # one sentence per person
    if name == "navigate":
        return [q.split("?", 1)[1].split("\nOptions")[0].count(".") for q in questions]  # instructions
    return [len(q.split("Input:")[1].split()) for q in questions]  # dyck: symbols


@pytest.mark.parametrize("name, low, high, rule", [
    ("boolean_expressions", 3, 5, lambda level, sizes: set(sizes) == {2 * level + 2}),
    ("multistep_arithmetic_two", 1, 6, lambda level, sizes: set(sizes) == {level}),
    ("word_sorting", 3, 12, lambda level, sizes: max(sizes) == level and min(sizes) == 2),
    ("object_counting", 3, 9, lambda level, sizes: max(sizes) == level and min(sizes) == 2),
    ("web_of_lies", 2, 8, lambda level, sizes: set(sizes) == {level}),
    ("navigate", 2, 11, lambda level, sizes: max(sizes) <= level + 2 and min(sizes) >= 3),
    ("dyck_languages", 3, 9, lambda level, sizes: True),
])
def test_a_level_changes_the_questions_shape_as_its_spec_says(name, low, high, rule):
    low_sizes, high_sizes = _sizes(name, low), _sizes(name, high)
    assert rule(low, low_sizes) and rule(high, high_sizes)
    assert sum(high_sizes) / len(high_sizes) >= 1.4 * sum(low_sizes) / len(low_sizes)  # harder is bigger
    task = BUILTIN_TASKS[name](0, low, 0)
    assert all(task.solve(e.input) == task.normalise(e.target) for e in task.examples)  # still exactly labelled
    assert task.extra["difficulty_level"] == low
    assert task.source == ("builtin" if low == SPEC_OF[name].default_level else f"builtin, difficulty level {low}")


@pytest.mark.parametrize("name", NAMES)
def test_every_spec_declares_its_levels_and_the_config_help_names_them(name):
    from arte_core.config.run import RunConfig
    from arte_core.config import field_specs

    spec = SPEC_OF[name]
    assert spec.default_level in spec.levels and spec.level_meaning
    help_text = next(s.help for s in field_specs(RunConfig) if s.path == "task_difficulty")
    assert f"{name} {spec.levels.start}-{spec.levels.stop - 1} (" in help_text
    assert f"default {spec.default_level})" in help_text.split(name, 1)[1].split(")", 1)[0] + ")"


def test_a_level_outside_the_tasks_levels_and_a_difficulty_for_a_bbh_folder_are_refused(tmp_path):
    with pytest.raises(ArteError, match=r"navigate' has difficulty levels 2-12 .*default 8.*got 13"):
        load_task("navigate", difficulty=13)
    with pytest.raises(ArteError, match="built-in tasks only"):
        load_task("navigate", task_dir=tmp_path, difficulty=3)


def test_a_level_too_small_for_the_pool_says_which_level_and_size_to_change():
    # Six-token Boolean expressions: about 200 distinct questions, fewer than a run's pool of 300.
    with pytest.raises(ArteError, match=r"difficulty level 2 .*Raise task_difficulty \(levels 1-5\) or lower "
                                        r"score.n_pref / eval.n_test"):
        load_task("boolean_expressions", difficulty=2)


def test_the_pool_grows_to_fit_a_powered_test_split_and_starts_with_the_same_questions():
    from arte_core.config.run import RunConfig
    from arte_core.context import preference_and_test_split
    from arte_core.tasks import split_items_needed

    config = RunConfig()
    assert config.eval.n_test == 300 and split_items_needed(config) == 340
    for name in NAMES:
        task = load_task(name, seed=0, min_examples=split_items_needed(config))
        assert len(task.examples) == 340 + POOL_MARGIN
        assert task.examples[:300] == BUILTIN_TASKS[name](0).examples
        pref, test = preference_and_test_split(config, task)
        assert (len(pref), len(test)) == (40, 300)
        assert not {e.input for e in pref} & {e.input for e in test}
    irt = RunConfig()
    irt.score.selection = "irt"  # 4 x 40 candidates + 300 test items
    assert split_items_needed(irt) == 460
    assert len(load_task("web_of_lies", min_examples=split_items_needed(irt)).examples) == 460 + POOL_MARGIN


def test_task_difficulty_joins_the_run_identity_only_when_set():
    from arte_core.config.run import RunConfig

    default, harder = RunConfig(), RunConfig()
    harder.task_difficulty = 4
    assert default.fingerprint() == "86f695b7"
    assert harder.fingerprint() != default.fingerprint()

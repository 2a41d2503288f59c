"""Answer extraction, normalisation, and teacher-output parsing on literal examples."""

import pytest

from arte_core.parsing import Deduplicator, parse_question_blocks, parse_rationale_answer, strip_answer, word_count
from arte_core.tasks.answers import AnswerFormat as F
from arte_core.tasks.answers import Reading, extract_answer, infer_labels, normalise, read_answer


@pytest.mark.parametrize("fmt, text, expected", [
    (F.BOOLEAN, "not True = False. So the answer is False.", "False"),
    (F.BOOLEAN, "<ans>true</ans>", "True"),
    (F.BOOLEAN, "A is True, B is False, so Z is True and the rest is noise", "True"),
    (F.BOOLEAN, "I cannot tell.", None),
    (F.YES_NO, "So the answer is yes.", "Yes"),
    (F.CHOICE, "The answer is (C).", "(C)"),
    (F.CHOICE, "<ans>B</ans>", "(B)"),
    (F.INTEGER, "3 + 4 = 7. So the answer is -12.", "-12"),
    (F.INTEGER, "the total is 1,204 apples", "1204"),
    (F.TEXT, "So the answer is Apple  Banana.", "apple banana"),
    (F.TEXT, "no conclusion here", None),
])
def test_extract_answer(fmt, text, expected):
    assert extract_answer(fmt, text) == expected


@pytest.mark.parametrize("fmt, text, expected", [
    (F.BOOLEAN, "not True = False. So the answer is False.", Reading("False", "strict", False)),
    (F.BOOLEAN, "<ans>true</ans>", Reading("True", "strict", False)),
    (F.BOOLEAN, "We get <ans>False", Reading("False", "strict", False)),  # its </ans> was the stop string
    (F.BOOLEAN, "The answer is: **True**", Reading("True", "strict", False)),
    (F.CHOICE, "So the answer is B.", Reading("(B)", "strict", False)),
    (F.BOOLEAN, "not True = False, then False or True = True.", Reading("True", "lenient", False)),
    (F.INTEGER, "the total is 1,204 apples", Reading("1204", "lenient", False)),
    (F.BOOLEAN, "I cannot tell.", Reading(None, "none", False)),
])
def test_a_reading_says_whether_it_was_strict_or_lenient(fmt, text, expected):
    assert read_answer(fmt, text) == expected


@pytest.mark.parametrize("text", [
    "So the answer is not True.",
    "The result isn't True",
    "Then Z = not True",
    "So the answer is True. Wait, the answer is not True.",  # the last statement decides
    "(A) fails, and it is not (C)",
])
def test_a_negated_answer_is_not_read_as_its_opposite_nor_as_itself(text):
    fmt = F.CHOICE if "(C)" in text else F.BOOLEAN
    assert read_answer(fmt, text) == Reading(None, "none", False)


def test_an_output_cut_off_by_the_token_cap_is_read_only_from_a_stated_answer():
    chain = 'First the bracket: ( False and True ) = False.\nApply "not": not False = True, so'
    assert read_answer(F.BOOLEAN, chain, finished=True) == Reading("True", "lenient", False)
    assert read_answer(F.BOOLEAN, chain, finished=False) == Reading(None, "none", True)  # never its last word
    stated = "not False = True. So the answer is True.\nApply"
    assert read_answer(F.BOOLEAN, stated, finished=False) == Reading("True", "strict", True)
    restating = "So the answer is True.\nApply: So the answer is"  # cut off while stating another answer
    assert read_answer(F.BOOLEAN, restating, finished=False) == Reading(None, "none", True)


def test_label_set_limits_text_answers():
    labels = ("invalid", "valid")
    assert extract_answer(F.TEXT, "So the answer is valid.", labels) == "valid"
    assert extract_answer(F.TEXT, "the argument is invalid, I think", labels) == "invalid"
    assert extract_answer(F.TEXT, "So the answer is maybe.", labels) is None
    assert infer_labels(F.TEXT, ["valid", "invalid", "valid"]) == ("invalid", "valid")
    assert infer_labels(F.TEXT, [f"w{i}" for i in range(20)]) == ()


def test_infer_tolerates_a_stray_target():
    assert F.infer(["(A)"] * 99 + ["Monsters, Inc"]) is F.CHOICE
    assert F.infer(["True", "False"]) is F.BOOLEAN
    assert F.infer(["12", "-3"]) is F.INTEGER
    assert F.infer(["valid", "invalid"]) is F.TEXT


def test_normalise_rejects_wrong_format():
    assert normalise(F.BOOLEAN, "maybe") is None
    assert normalise(F.INTEGER, "12.5") is None
    assert normalise(F.CHOICE, "(Z)") is None
    assert normalise(F.YES_NO, " No. ") == "No"


def test_parse_question_blocks_counts_broken_ones():
    text = ("<input>True and False is</input>\n<target>False</target>\n"
            "<input>abandoned</input> then <input>not True is</input><target>False</target>\n"
            "<input>no target here</input>")
    parsed = parse_question_blocks(text)
    assert parsed.questions == [("True and False is", "False"), ("not True is", "False")]
    assert parsed.n_unparsed == 2


def test_rationale_answer_helpers():
    text = "First, A = True.\nThen Z = A = True.\n<ans>True</ans>"
    assert parse_rationale_answer(text) == "True"
    assert strip_answer(text) == "First, A = True.\nThen Z = A = True."
    assert strip_answer("We add 2 and 3. So the answer is 5.") == "We add 2 and 3."
    assert word_count(text) == 10


def test_deduplicator_drops_exact_and_near_duplicates():
    dedup = Deduplicator(0.9, seen=["True and False is"])
    assert dedup.add("true  and false is") is False  # case and spaces only
    assert dedup.add("True and False and not True is") is True
    assert dedup.add("True and False and not True is.") is False  # near duplicate
    assert dedup.add("not ( False ) is") is True

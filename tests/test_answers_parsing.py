"""Answer extraction, normalisation, and teacher-output parsing on literal examples."""

import pytest

from arte_core.parsing import Deduplicator, parse_question_blocks, parse_rationale_answer, strip_answer, word_count
from arte_core.tasks.answers import AnswerFormat as F
from arte_core.tasks.answers import extract_answer, infer_labels, normalise


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

"""Draft scores that measure what they claim: answers read honestly (strict, lenient, truncated), balanced
accuracy and the label-copy rate, the score the pairs rank on, and the answer budget from the task."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import TECHNIQUES, open_scoring_run

from arte_core.config import RunConfig, config_from_dict
from arte_core.context import open_run
from arte_core.errors import ArteError
from arte_core.models.base import Generation
from arte_core.progress import Reporter
from arte_core.prompts import question_stub
from arte_core.stages.elicit import question_id, rationale_id
from arte_core.stages.pairs import load_signal_scores, rationale_pairs
from arte_core.stages.score import balanced_accuracy, label_copy_rate, score_drafts, student_max_new_tokens
from arte_core.store import Store, utcnow
from arte_core.store.transfer import import_parquet
from arte_core.tasks import load_task
from paths import OLD_DEMO

ROOT = Path(__file__).resolve().parent.parent

# Three True targets and one False: a student that always says the majority label gets 0.75 accuracy.
PREF_ITEMS = [("not ( True ) and ( True ) is", "False"), ("True and not False is", "True"),
              ("not not True is", "True"), ("True or False is", "True")]
QUESTIONS = [("True and False is", "False"), ("not False or False is", "True")]

# What the fake student writes, per demo (question, technique) and preference item: (text, stopped).
COPIES_FALSE = [("Some words. So the answer is False.", True)] * 4
SLOPPY = [("not ( True ) = False, and False and True = False, so the", False),  # cut off by the cap
          ("not False = True, and True and True = True.", True),  # no "answer is": lenient
          ("not not True = True. So the answer is not True.", True),  # negated: unparsed
          ("True or False = True. So the answer is True.", True)]
RIGHT = [("It is False. So the answer is False.", True)] + [("It is True. So the answer is True.", True)] * 3
BEHAVIOUR = {(0, 0): COPIES_FALSE, (0, 1): COPIES_FALSE, (1, 0): SLOPPY, (1, 1): RIGHT}


class FakeStudent:
    """Answers each one-shot prompt from BEHAVIOUR, by the demo it shows and the question it asks."""

    name = "fake-student"

    def chat_prompt(self, text):
        return text

    def generate_each(self, prompts, params, batch_size=8):
        for index, prompt in enumerate(prompts):
            question = next(q for q, (text, _) in enumerate(QUESTIONS) if prompt.startswith(f"Q: {text}\n"))
            technique = 1 if "carefully" in prompt.split("\n\n")[0] else 0
            item = next(i for i, (text, _) in enumerate(PREF_ITEMS) if prompt.endswith(question_stub(text)))
            text, stopped = BEHAVIOUR[(question, technique)][item]
            yield index, Generation(text, 10, 5, stopped)


@pytest.fixture
def ctx(tmp_path, tiny_model_dir):
    # max_new_tokens explicit: the fake student needs no tokenizer
    context = open_scoring_run(tmp_path, tiny_model_dir, "scores", 32, PREF_ITEMS, QUESTIONS)
    context.models.student = lambda name=None: FakeStudent()
    yield context
    context.store.close()


def draft(ctx, question: int, technique: int) -> str:
    return rationale_id(question_id(ctx.run_id, "draft", question), TECHNIQUES[technique])


def test_each_answer_is_stored_with_how_it_was_read(ctx):
    assert score_drafts(ctx) == 4
    items = ctx.store.rows("SELECT item_index, answer, correct, parse_mode, truncated FROM icl_items "
                           "WHERE rationale_id = ? ORDER BY item_index", [draft(ctx, 1, 0)])
    assert [tuple(r.values()) for r in items] == [
        (0, None, False, "none", True),  # cut off: its last False is a step of the chain, not an answer
        (1, "True", True, "lenient", False),
        (2, None, False, "none", False),  # "the answer is not True" is not read as True
        (3, "True", True, "strict", False)]


def test_draft_scores_are_chance_corrected_and_count_copies_truncations_and_lenient_reads(ctx):
    score_drafts(ctx)
    scores = {r["rationale_id"]: r for r in ctx.store.draft_scores(ctx.run_id, ctx.config.student)}
    columns = ("accuracy", "balanced_accuracy", "label_copy_rate", "n_unparsed", "n_truncated", "n_lenient")
    # Always answering the demo's own label: majority-label accuracy, chance balanced accuracy.
    assert [scores[draft(ctx, 0, 0)][c] for c in columns] == [0.25, 0.5, 1.0, 0, 0, 0]
    assert [scores[draft(ctx, 1, 0)][c] for c in columns] == [0.5, 1 / 3, 0.5, 2, 1, 1]
    assert [scores[draft(ctx, 1, 1)][c] for c in columns] == [1.0, 1.0, 0.75, 0, 0, 0]


def test_pairs_rank_on_balanced_accuracy_by_default_and_on_accuracy_when_asked(ctx):
    score_drafts(ctx)
    student = ctx.config.student
    balanced = {r["rationale_id"]: r["score"] for r in load_signal_scores(ctx, student, "icl")}
    assert balanced == {draft(ctx, 0, 0): 0.5, draft(ctx, 0, 1): 0.5, draft(ctx, 1, 0): 1 / 3, draft(ctx, 1, 1): 1.0}
    ctx.config.pairs.score = "accuracy"
    accuracy = {r["rationale_id"]: r["score"] for r in load_signal_scores(ctx, student, "icl")}
    assert accuracy == {draft(ctx, 0, 0): 0.25, draft(ctx, 0, 1): 0.25, draft(ctx, 1, 0): 0.5, draft(ctx, 1, 1): 1.0}


def test_balanced_accuracy_of_pure_label_copying_is_chance():
    targets = ["True", "True", "True", "False"]
    copied = ["False"] * 4
    assert balanced_accuracy(targets, [a == t for a, t in zip(copied, targets)]) == 0.5
    assert label_copy_rate(copied, "False") == 1.0
    assert label_copy_rate([None, "True", None, "False"], "True") == 0.25  # unparsed is no copy
    assert balanced_accuracy(["(A)", "(B)", "(C)", "(C)"], [True, False, True, False]) == 0.5


def test_ties_of_equal_counts_rank_as_ties():
    """Equal per-label counts give one score whatever the order of the items (summed as fractions: as
    floats, 1 + 1 + 1/3 and 1/3 + 1 + 1 differ in the last bit), so no pair is built from them."""
    first = balanced_accuracy(["(A)", "(B)", "(C)", "(C)", "(C)"], [True, True, True, False, False])
    second = balanced_accuracy(["(C)", "(C)", "(C)", "(A)", "(B)"], [False, True, False, True, True])
    assert first == second == 7 / 9
    rows = [dict(question_id="q", rationale_id="q:a", score=first), dict(question_id="q", rationale_id="q:b", score=second)]
    assert rationale_pairs(rows, min_margin=0.0) == []


def test_an_open_answer_task_ranks_on_accuracy(ctx):
    score_drafts(ctx)
    ctx.task = load_task("object_counting")
    scores = load_signal_scores(ctx, ctx.config.student, "icl")
    assert {r["score"] for r in scores} == {0.25, 0.5, 1.0}


def test_drafts_scored_before_schema_3_are_never_ranked_on_a_score_they_lack(ctx):
    """An upgraded store keeps its old scores (NULL balanced accuracy); pairs say how to use them."""
    score_drafts(ctx)
    ctx.store.execute("UPDATE icl_scores SET balanced_accuracy = NULL WHERE rationale_id = ?", [draft(ctx, 0, 0)])
    with pytest.raises(ArteError, match=r"1 of 4 drafts .* have no balanced_accuracy: they were scored by an older "
                                        r"ARTE Studio .* pairs.score: accuracy"):
        load_signal_scores(ctx, ctx.config.student, "icl")
    ctx.config.pairs.score = "accuracy"
    assert len(load_signal_scores(ctx, ctx.config.student, "icl")) == 4


def test_an_old_demo_export_imports_with_the_new_columns_null_and_ranks_only_on_what_it_has(tmp_path):
    demo_config = config_from_dict(yaml.safe_load((ROOT / "assets/configs/demo.yaml").read_text()))
    demo_config.eval.n_test = 24  # the old demo's test split (today's demo evaluates on 300 items)
    with Store(tmp_path / "demo.duckdb") as store:
        counts = import_parquet(store, OLD_DEMO)
        assert (counts["icl_scores"], counts["icl_items"], counts["evaluations"]) == (32, 384, 6)
        assert store.scalar("SELECT count(*) FROM icl_scores WHERE balanced_accuracy IS NULL AND label_copy_rate "
                            "IS NULL AND n_truncated IS NULL AND n_lenient IS NULL") == 32
        assert store.scalar("SELECT count(*) FROM icl_items WHERE parse_mode IS NULL AND truncated IS NULL") == 384
        assert store.scalar("SELECT count(*) FROM evaluations WHERE n_truncated IS NULL") == 6
        assert store.scalar("SELECT count(*) FROM eval_items WHERE parse_mode IS NULL") == 144
        demo_config.runs_dir = str(tmp_path / "runs")
        ctx = open_run(demo_config, store, Reporter(tmp_path / "events.jsonl", show_bar=False))
        assert ctx.run_id == "boolean_expressions-fccdeae4"  # the imported run, not a new one
        with pytest.raises(ArteError, match="32 of 32 drafts .* pairs.score: accuracy"):
            load_signal_scores(ctx, demo_config.student, "icl")
        demo_config.pairs.score = "accuracy"
        assert len(load_signal_scores(ctx, demo_config.student, "icl")) == 32


def test_the_answer_budget_comes_from_the_task_in_the_students_tokens(smollm2_path):
    from transformers import AutoTokenizer

    student = SimpleNamespace(tokenizer=AutoTokenizer.from_pretrained(smollm2_path))
    # boolean_expressions' longest seed answer is 107 SmolLM2 tokens (with "So the answer is X." and
    # the blank line after it); × 1.5 headroom.
    assert student_max_new_tokens(0, load_task("boolean_expressions"), student) == 161
    assert student_max_new_tokens(64, load_task("boolean_expressions"), student) == 64  # explicit wins
    assert RunConfig().score.max_new_tokens == 0 and RunConfig().eval.max_new_tokens == 0


def test_the_studios_draft_facts_carry_the_new_scores_and_follow_a_change(ctx):
    from arte_core.store.facts import FACTS, ensure_draft_facts

    score_drafts(ctx)
    student = ctx.config.student

    def facts():
        ensure_draft_facts(ctx.store, ctx.run_id, student)
        return ctx.store.rows(f"SELECT balanced_accuracy, label_copy_rate, n_truncated, n_lenient FROM {FACTS} "
                              "WHERE rationale_id = ?", [draft(ctx, 1, 0)])[0]

    assert facts() == dict(balanced_accuracy=1 / 3, label_copy_rate=0.5, n_truncated=1, n_lenient=1)
    ctx.store.execute("UPDATE icl_scores SET balanced_accuracy = NULL WHERE rationale_id = ?", [draft(ctx, 1, 0)])
    assert facts()["balanced_accuracy"] is None

"""A task the project has never seen, in a BBH-layout folder these tests write: a teacher that cannot write
its questions fails within a few calls, and `elicit.question_source: pool` drafts from the task's own
labelled pool instead, never from its preference or test split."""

import json
import time

import pytest
import yaml

from arte_core.config import RunConfig, load_config
from arte_core.context import open_run
from arte_core.errors import ArteError
from arte_core.models import Generation
from arte_core.pipeline import run_stage
from arte_core.progress import Reporter
from arte_core.stages.elicit import POOL_TEACHER, generate_questions
from arte_core.store import Store
from arte_core.tasks import Task
from arte_core.tasks.base import input_key
from helpers import TECHNIQUES
from paths import REPO

TASK = "greater_than"  # no built-in task and no BBH task has this name

COT_PROMPT = """Answer whether the first number is greater than the second.

Q: Is 7 greater than 3?
A: Let's think step by step.
7 is 4 more than 3, so 7 is greater. So the answer is Yes.

Q: Is 2 greater than 9?
A: Let's think step by step.
2 is 7 less than 9, so 2 is not greater. So the answer is No.

Q: Is 5 greater than 5?
A: Let's think step by step.
5 equals 5, and a number is not greater than itself. So the answer is No.
"""


def write_task_folder(root, n_pairs: int = 30, duplicates: int = 4):
    """tasks/greater_than.json and cot-prompts/greater_than.txt; the first `duplicates` questions appear
    twice (the second time with other case and spacing), as public data sometimes has them."""
    examples = [{"input": f"Is {a} greater than {b}?", "target": "Yes" if a > b else "No"}
                for a, b in ((10 + i, 40 - i) for i in range(n_pairs))]
    examples += [{"input": "  " + e["input"].upper().replace(" ", "  "), "target": e["target"]}
                 for e in examples[:duplicates]]
    (root / "tasks").mkdir(parents=True)
    (root / "cot-prompts").mkdir()
    (root / "tasks" / f"{TASK}.json").write_text(json.dumps({"examples": examples}))
    (root / "cot-prompts" / f"{TASK}.txt").write_text(COT_PROMPT)
    return root


def unseen_config(tmp_path, model_dir: str, **elicit) -> RunConfig:
    """The demo's sizes on the unseen task, with `model_dir` as teacher and student."""
    config = load_config(REPO / "assets" / "configs" / "demo.yaml")
    config.task, config.task_dir = TASK, str(write_task_folder(tmp_path / "bbh"))
    config.teacher = config.student = model_dir
    config.runs_dir, config.run_name = str(tmp_path / "runs"), "unseen"
    config.score.n_pref, config.eval.n_test = 6, 8
    config.elicit.techniques = list(TECHNIQUES)
    config.elicit.question_max_new_tokens, config.elicit.rationale_max_new_tokens = 24, 8
    for name, value in elicit.items():
        setattr(config.elicit, name, value)
    return config


@pytest.fixture
def open_unseen(tmp_path, tiny_model_dir):
    stores = []

    def opener(**elicit):
        store = Store(tmp_path / f"store{len(stores)}.duckdb")
        stores.append(store)
        return open_run(unseen_config(tmp_path, tiny_model_dir, **elicit), store,
                        Reporter(tmp_path / "events.jsonl", show_bar=False))

    yield opener
    for store in stores:
        store.close()


class Scripted:
    """Replays fixed teacher replies and records how many prompts each generate call had."""

    name = "scripted"

    def __init__(self, replies):
        self.replies, self.batches = list(replies), []

    def chat_prompt(self, text):
        return text

    def generate(self, prompts, params, batch_size=8, progress=None):
        self.batches.append(len(prompts))
        return [Generation(self.replies.pop(0), 10, 10, True) for _ in prompts]


GARBAGE = "the the the"
# Kept questions must not be near-duplicates of the task's questions or of one another.
PARSABLE = ["A farmer has 61 sheep and sells 60. Are any left?</input><target>Yes</target>",
            "Would a year of 365 days be shorter than a week?</input><target>No</target>",
            "Does the word banana hold three letters a?</input><target>Yes</target>",
            "If it rains all morning, is the street dry at noon?</input><target>No</target>"]


def test_an_unparsable_teacher_stops_within_three_calls_with_its_output_and_the_fixes(open_unseen):
    ctx = open_unseen()  # the demo asks for 8 questions, 5 a call, with a budget of 8 calls
    started = time.monotonic()
    with pytest.raises(ArteError) as error:
        run_stage(ctx, "elicit")
    message = str(error.value)
    assert "no parsable question in 3 calls" in message
    assert "Its last raw output: '<input>" in message  # the prefill plus what the teacher wrote
    for fix in ("elicit.question_source: pool", "a stronger teacher", "elicit.prompt_format: chat",
                "elicit.question_max_new_tokens"):
        assert fix in message
    calls = ctx.store.generation_calls(ctx.run_id, "draft")
    assert len(calls) == 3 and all(c["n_kept"] == 0 for c in calls)  # raw outputs kept for inspection
    assert calls[-1]["output"][:200] in message
    assert not ctx.store.is_done(ctx.run_id, "elicit")
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("batch_size, batches", [(8, [3]), (2, [2, 1])])
def test_calls_in_a_row_that_keep_nothing_count_across_batches(open_unseen, batch_size, batches):
    ctx = open_unseen(batch_size=batch_size, questions_per_call=1)  # 8 questions want 8 calls
    teacher = Scripted([GARBAGE] * 8)
    with pytest.raises(ArteError, match="in 3 calls"):
        generate_questions(ctx, teacher, "draft", 8, 0.7)
    assert teacher.batches == batches


def test_once_a_question_is_kept_the_teacher_goes_on_in_full_batches(open_unseen):
    ctx = open_unseen(questions_per_call=1, max_question_calls=20)
    replies = [GARBAGE, PARSABLE[0], GARBAGE] + [GARBAGE] * 3 + PARSABLE[1:]
    teacher = Scripted(replies)
    assert generate_questions(ctx, teacher, "draft", 4, 0.7) == 4
    # the first batch is capped while nothing is kept; later calls that keep nothing do not stop it
    assert teacher.batches == [3, 3, 3]


def test_pool_questions_leave_the_splits_alone_and_the_teacher_writes_only_rationales(open_unseen):
    ctx = open_unseen(question_source="pool", n_questions=6)
    assert run_stage(ctx, "elicit") == {"question_source": "pool", "n_questions": 6}
    questions = ctx.store.questions(ctx.run_id, "draft")
    assert len(questions) == 6 and {q["teacher"] for q in questions} == {POOL_TEACHER}
    taken = {input_key(r["input"]) for r in ctx.pref_items + ctx.test_items}
    taken |= {input_key(e.input) for e in ctx.task.exemplars}
    assert not {input_key(q["input"]) for q in questions} & taken
    assert {q["target"] for q in questions} <= {"Yes", "No"}
    assert ctx.store.generation_calls(ctx.run_id, "draft") == []  # no teacher call wrote a question
    rationales = ctx.store.rationales(ctx.run_id, "draft")
    assert len(rationales) == 6 * len(TECHNIQUES) and {r["teacher"] for r in rationales} == {ctx.config.teacher}
    # the run says where its questions come from: in its stored config and its stage info
    stored = yaml.safe_load(ctx.store.run(ctx.run_id)["config_yaml"])
    assert stored["elicit"]["question_source"] == "pool"
    assert ctx.store.stage_info(ctx.run_id, "elicit") == {"question_source": "pool", "n_questions": 6}
    # the aligned teacher's data in pool mode: the same questions, so only the rationales differ
    assert generate_questions(ctx, None, "arte", 6, 1.0) == 6
    assert [q["input"] for q in ctx.store.questions(ctx.run_id, "arte")] == [q["input"] for q in questions]


def test_a_short_pool_gives_what_it_has_once_per_question_and_says_so(open_unseen, tmp_path):
    ctx = open_unseen(question_source="pool", n_questions=100)
    n_left = 30 - 6 - 8  # distinct questions - preference - test items
    assert generate_questions(ctx, None, "draft", 100, 1.0) == n_left
    inputs = [input_key(q["input"]) for q in ctx.store.questions(ctx.run_id, "draft")]
    assert len(set(inputs)) == len(inputs)  # the file's duplicates become one draft at most
    assert f"holds {n_left} questions outside the preference and test splits" in (tmp_path / "events.jsonl").read_text()
    assert generate_questions(ctx, None, "draft", 100, 1.0) == n_left  # resumed: nothing added twice


def test_question_source_is_part_of_the_run_identity_and_the_new_fields_leave_old_ids_alone(tmp_path):
    default = RunConfig()
    pool = RunConfig()
    pool.elicit.question_source = "pool"
    assert pool.fingerprint() != default.fingerprint()
    patient = RunConfig()
    patient.elicit.max_unparsed_calls = 10  # when a failing teacher gives up: raising it resumes the same run
    assert patient.fingerprint() == default.fingerprint() == "86f695b7"  # n_test's default 300 (issue 16)


def test_arte_elicit_on_an_unseen_task_fails_fast_on_the_command_line(tmp_path, tiny_model_dir, capsys):
    from arte_core.cli import main

    folder = write_task_folder(tmp_path / "bbh")
    db = tmp_path / "cli.duckdb"
    args = ["elicit", "--config", str(REPO / "assets" / "configs" / "demo.yaml"), "--task-dir", str(folder),
            "--task", TASK, "--teacher", tiny_model_dir, "--student", tiny_model_dir, "--db", str(db),
            "--runs-dir", str(tmp_path / "runs"), "--elicit.question_max_new_tokens", "24", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no parsable question in 3 calls" in err and "elicit.question_source: pool" in err
    with Store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM generation_calls") == 3


def test_pool_mode_on_a_task_with_nothing_left_for_drafts_says_what_to_lower(tmp_path, tiny_model_dir):
    config = unseen_config(tmp_path, tiny_model_dir, question_source="pool")
    config.score.n_pref, config.eval.n_test = 10, 40  # the test split takes every remaining question
    with Store(tmp_path / "s.duckdb") as store:
        ctx = open_run(config, store, Reporter(None, show_bar=False))
        with pytest.raises(ArteError, match="no labelled example left .* lower score.n_pref or eval.n_test"):
            run_stage(ctx, "elicit")
        assert not store.is_done(ctx.run_id, "elicit")


def test_a_stored_run_keeps_its_split_whatever_the_split_rule_says_now(open_unseen, monkeypatch):
    ctx = open_unseen()
    pref, test = ctx.pref_items, ctx.test_items
    monkeypatch.setattr(Task, "split", lambda self, n_pref, n_test, seed: (self.examples[-n_pref:], self.examples[:n_test]))
    again = open_run(ctx.config, ctx.store, ctx.reporter)
    assert (again.pref_items, again.test_items) == (pref, test)

    def too_small(self, *args, **kwargs):
        raise ArteError("too few usable examples")  # what today's rules may say of an old run's task

    monkeypatch.setattr(Task, "split", too_small)
    assert open_run(ctx.config, ctx.store, ctx.reporter).pref_items == pref  # the stored split is not redrawn


def test_pool_runs_build_no_question_pairs_the_teacher_would_never_use(open_unseen):
    from arte_core.stages.pairs import build_pairs
    from arte_core.store import utcnow

    ctx = open_unseen(question_source="pool", n_questions=4)
    run_stage(ctx, "elicit")
    student, items = ctx.config.student, ctx.pref_items
    scores, rows = [], []
    for d, draft in enumerate(ctx.store.rationales(ctx.run_id, "draft")):
        right = [i < d % (len(items) + 1) for i in range(len(items))]  # drafts differ in how many they get right
        rows += [dict(rationale_id=draft["rationale_id"], student=student, item_index=item["item_index"],
                      output="o", answer=item["target"] if ok else None, correct=ok, parse_mode="strict",
                      truncated=False) for item, ok in zip(items, right)]
        scores.append(dict(rationale_id=draft["rationale_id"], student=student, run_id=ctx.run_id,
                           accuracy=sum(right) / len(items), n_items=len(items), n_correct=sum(right),
                           n_unparsed=len(items) - sum(right), icl_format="completion", created_at=utcnow(),
                           balanced_accuracy=None, label_copy_rate=0.0, n_truncated=0, n_lenient=0))
    with ctx.store.transaction():
        ctx.store.insert("icl_scores", scores)
        ctx.store.insert("icl_items", rows)
    ctx.config.pairs.score = "accuracy"
    pairs = build_pairs(ctx, student, "icl")
    assert pairs and {p["kind"] for p in pairs} == {"rationale"}


def test_the_studio_drafts_line_says_the_questions_come_from_the_pool(open_unseen):
    from arte_core.store import utcnow
    from arte_core.studio.drafts import draft_filter, drafts_view

    ctx = open_unseen(question_source="pool", n_questions=2)
    run_stage(ctx, "elicit")
    student = ctx.config.student
    ctx.store.insert("icl_scores", [
        dict(rationale_id=r["rationale_id"], student=student, run_id=ctx.run_id, accuracy=0.5, n_items=6,
             n_correct=3, n_unparsed=0, icl_format="completion", created_at=utcnow())
        for r in ctx.store.rationales(ctx.run_id, "draft")])
    info = drafts_view(ctx.store, ctx.run_id, student, draft_filter())["info"]
    assert "questions drawn from the task's labelled pool" in info
    ctx.store.execute("UPDATE runs SET config_yaml = replace(config_yaml, 'question_source: pool', "
                      "'question_source: teacher')")
    assert "labelled pool" not in drafts_view(ctx.store, ctx.run_id, student, draft_filter())["info"]

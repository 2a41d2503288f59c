"""Like-for-like arms (issue 16 item 1): the unaligned ('base') and the aligned ('arte') teacher write their
data with the same prompts, decoding and sizes, and every trained arm gets the same number of examples and
the same SFT settings and seed."""

import json

import pytest
from test_stages import QUESTIONS, ctx, scored_run  # noqa: F401  (the fixture and the scored drafts of a tiny run)

from arte_core.models import SamplingParams
from arte_core.models.base import Generation
from arte_core.pipeline import run_stage
from arte_core.stages.regenerate import ARMS, write_arm

# Distinct boolean expressions, a different list per teacher: the arms differ in what is written, not how.
WRITES = {"base": ["True and False", "not True or False", "False or not False", "not ( True and True )"],
          "aligned": ["True or False and False", "not ( False or False ) and True", "( False or True ) and True",
                      "not False and False"]}


class ScriptedTeacher:
    """A teacher whose replies are fixed text (a random tiny model writes no parsable question) and which
    records every prompt and the decoding it was asked for."""

    def __init__(self, name: str):
        self.name, self.calls, self._next = name, [], 0

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        return user

    def generate(self, prompts, params: SamplingParams, batch_size: int = 8, progress=None) -> list[Generation]:
        self.calls += [(prompt, params) for prompt in prompts]
        outputs = []
        for prompt in prompts:
            if prompt.endswith("<input>"):  # a question call, prefilled with the first block's opening tag
                expression = WRITES[self.name][self._next % len(WRITES[self.name])]
                self._next += 1
                text = f"{expression} is</input>\n<target>True</target>"
            else:
                text = "We evaluate it. So the answer is True."
            outputs.append(Generation(text=text, n_prompt_tokens=1, n_generated_tokens=5, stopped=True))
        return outputs


def decoding(teacher: ScriptedTeacher) -> list[tuple]:
    """How each call was decoded, and whether it asked for a question or a rationale."""
    return [(prompt.endswith("<input>"), params) for prompt, params in teacher.calls]


def test_both_arms_are_written_with_the_same_prompts_decoding_and_sizes(ctx):  # noqa: F811
    student = ctx.config.student
    ctx.config.elicit.questions_per_call, ctx.config.elicit.max_question_calls = 1, 0  # 0: as many calls as it takes
    ctx.config.elicit.near_duplicate_threshold = 1.0  # the scripted questions are short: drop exact repeats only
    teachers = {"base": ScriptedTeacher("base"), "arte": ScriptedTeacher("aligned")}
    counts = {origin: write_arm(ctx, teachers[origin], origin, student, 3) for origin in ARMS}
    assert counts == {"base": 3, "arte": 3}

    assert decoding(teachers["base"]) == decoding(teachers["arte"])  # temperatures, token limits, stops, seeds
    calls = {o: [(c["prompt"], c["temperature"], c["seed"], c["n_kept"])
                 for c in ctx.store.generation_calls(ctx.run_id, o, student)] for o in ARMS}
    assert calls["base"] == calls["arte"] and len(calls["base"]) == 3
    questions = {o: ctx.store.questions(ctx.run_id, o, student) for o in ARMS}
    assert [q["input"] for q in questions["base"]] != [q["input"] for q in questions["arte"]]  # what they wrote differs
    rationales = {o: ctx.store.rationales(ctx.run_id, o, student) for o in ARMS}
    for origin in ARMS:  # the same prompt for the question each teacher wrote, at the same temperature and seed
        wanted = [ctx.prompts.plain_rationale(q["input"]) for q in questions[origin]]
        assert [r["prompt"] for r in rationales[origin]] == wanted
    assert ([(r["technique"], r["temperature"], r["seed"]) for r in rationales["base"]]
            == [(r["technique"], r["temperature"], r["seed"]) for r in rationales["arte"]])
    assert {r["teacher"] for r in rationales["base"]} == {"base"}
    assert {r["teacher"] for r in rationales["arte"]} == {"aligned"}


@pytest.mark.slow
def test_every_trained_arm_gets_the_same_examples_count_settings_and_seed(tmp_path, tiny_model_dir):
    """The whole path on a tiny model: pool questions, so the real (random) teacher can write both arms."""
    from test_students import two_students_run

    ctx = two_students_run(tmp_path, tiny_model_dir, "another-student")
    ctx.config.distill.arms = ["original", "arte", "best_drafts"]
    for stage in ("pairs", "align", "regenerate"):
        run_stage(ctx, stage)
    student = ctx.config.student
    base, arte = (ctx.store.rationales(ctx.run_id, o, student) for o in ARMS)
    assert len(base) == len(arte) == len(QUESTIONS)  # as many as the student's scored draft questions
    assert [r["question"] for r in base] == [r["question"] for r in arte]  # pool questions: the same in both arms
    how = [[(r["prompt"], r["temperature"], r["seed"]) for r in arm] for arm in (base, arte)]
    assert how[0] == how[1]
    assert {r["teacher"] for r in base} == {tiny_model_dir} and {r["teacher"] for r in arte} != {tiny_model_dir}

    paths = run_stage(ctx, "distill")
    assert set(paths) == {"original", "arte", "best_drafts"}
    sizes = {arm: len(ctx.store.sft_examples(ctx.run_id, arm, student)) for arm in paths}
    assert len(set(sizes.values())) == 1, sizes
    records = {arm: json.loads(ctx.store.artifact(ctx.run_id, f"student_{arm}", student)["metrics_json"])
               for arm in paths}
    assert all(r["settings"] == records["arte"]["settings"] and r["seed"] == ctx.config.seed for r in records.values())
    assert {r["dataset"]["n_examples"] for r in records.values()} == set(sizes.values())
    assert len({r["dataset"]["sha256"] for r in records.values()}) == 3  # three different datasets

    # Adding an arm later trains that arm only: the others' data, seed and settings are unchanged.
    created = {arm: ctx.store.artifact(ctx.run_id, f"student_{arm}", student)["created_at"] for arm in paths}
    ctx.config.distill.arms = ["original", "arte"]
    assert run_stage(ctx, "distill") == {arm: paths[arm] for arm in ("original", "arte")}
    assert all(ctx.store.artifact(ctx.run_id, f"student_{arm}", student)["created_at"] == created[arm]
               for arm in ("original", "arte"))
    ctx.store.close()

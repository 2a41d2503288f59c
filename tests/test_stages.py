"""Every stage on a tiny random model, against a real DuckDB file.

A random model cannot write a parsable question, so elicit is tested for its failure path here and
for its keep/dedupe/solver path on literal teacher text; the real-model test runs it for real.
"""

import pytest

from arte_core.align import ADAPTER, dpo_records, run_align
from arte_core.config import RunConfig
from arte_core.context import open_run
from arte_core.distill import original_examples, run_distill
from arte_core.elicit import _keep_questions, generate_questions, question_id, rationale_id, run_elicit
from arte_core.errors import ArteError
from arte_core.evaluate import run_evaluate
from arte_core.pairs import run_pairs
from arte_core.parsing import Deduplicator
from arte_core.preferences.icl import run_score, score_drafts
from arte_core.progress import Reporter
from arte_core.store import Store, utcnow

TECHNIQUES = ["expert_procedure", "common_sense"]


def tiny_config(model_dir: str, tmp_path, **overrides) -> RunConfig:
    config = RunConfig(task="boolean_expressions", teacher=model_dir, student=model_dir,
                       runs_dir=str(tmp_path / "runs"), run_name="tiny")
    config.elicit.n_questions = 3
    config.elicit.techniques = list(TECHNIQUES)
    config.elicit.question_max_new_tokens = 24
    config.elicit.rationale_max_new_tokens = 16
    config.elicit.max_question_calls = 2
    config.score.n_pref = 4
    config.score.max_new_tokens = 8
    config.score.engine = "batched"
    config.eval.n_test = 3
    config.eval.max_new_tokens = 8
    config.align.learning_rate = 1e-3
    config.align.batch_size = 2
    config.align.max_length = 256
    config.distill.learning_rate = 1e-3
    config.distill.batch_size = 2
    config.distill.use_lora = True
    config.distill.max_length = 256
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        setattr(getattr(config, section), name, value)
    return config


@pytest.fixture
def ctx(tmp_path, tiny_model_dir):
    store = Store(tmp_path / "store.duckdb")
    context = open_run(tiny_config(tiny_model_dir, tmp_path), store, Reporter(tmp_path / "events.jsonl", show_bar=False))
    yield context
    store.close()


def seed_drafts(ctx, questions: list[tuple[str, str]]) -> None:
    """Hand-written draft questions with one short rationale per technique, as elicit would store them."""
    rows_q, rows_r = [], []
    for idx, (text, target) in enumerate(questions):
        qid = question_id(ctx.run_id, "draft", idx)
        rows_q.append(dict(question_id=qid, run_id=ctx.run_id, origin="draft", idx=idx, input=text, target=target,
                           solver_target=ctx.task.solve(text), solver_agrees=ctx.task.solve(text) == target,
                           teacher="hand", call_index=0, created_at=utcnow()))
        for t_index, technique in enumerate(TECHNIQUES):
            text_r = f"We evaluate it{' carefully, step by step' * t_index}. So the answer is {target}."
            rows_r.append(dict(rationale_id=rationale_id(qid, technique), question_id=qid, run_id=ctx.run_id,
                               origin="draft", technique=technique, prompt="p", text=text_r, answer=target,
                               answer_parsed=True, matches_target=True, word_count=len(text_r.split()), n_tokens=5,
                               teacher="hand", temperature=0.7, seed=0, created_at=utcnow()))
    with ctx.store.transaction():
        ctx.store.insert("questions", rows_q)
        ctx.store.insert("rationales", rows_r)


QUESTIONS = [("True and False is", "False"), ("not False or False is", "True"),
             ("not ( True and True ) is", "False"), ("False or not False is", "True")]


def test_open_run_stores_disjoint_splits_once(ctx):
    pref, test = ctx.pref_items, ctx.test_items
    assert len(pref) == 4 and len(test) == 3
    assert not {r["input"] for r in pref} & {r["input"] for r in test}
    again = open_run(ctx.config, ctx.store, ctx.reporter)
    assert again.pref_items == pref


def test_changed_config_under_the_same_run_name_is_refused(ctx):
    changed = tiny_config(ctx.config.teacher, ctx.run_dir.parent.parent, score__n_pref=5)
    with pytest.raises(ArteError, match="already exists .* different config"):
        open_run(changed, ctx.store)


def test_elicit_with_a_teacher_that_writes_nothing_parsable_fails_clearly(ctx):
    with pytest.raises(ArteError, match="no parsable question"):
        run_elicit(ctx)
    calls = ctx.store.generation_calls(ctx.run_id, "draft")
    assert len(calls) == 2  # max_question_calls, each stored with its raw output for inspection
    assert all(c["n_kept"] == 0 for c in calls)
    assert not ctx.store.is_done(ctx.run_id, "elicit")


def test_keep_questions_checks_targets_dedupes_and_counts(ctx):
    reply = ("<input>True and False is</input><target>False</target>\n"
             "<input>not True or True is</input><target>False</target>\n"  # solver says True
             "<input>True  and False is</input><target>False</target>\n"  # duplicate
             "<input>True or True is</input><target>maybe</target>\n"  # not a boolean
             "<input>cut off")
    rows, counts = _keep_questions(ctx, reply, Deduplicator(0.95), "draft", 0, 10, 0, "hand")
    assert [(r["input"], r["solver_agrees"]) for r in rows] == [("True and False is", True), ("not True or True is", False)]
    assert rows[1]["solver_target"] == "True" and rows[1]["target"] == "False"
    assert counts == {"n_parsed": 4, "n_unparsed": 2, "n_duplicates": 1}


def test_generate_questions_is_resumable_per_call(ctx):
    class Scripted:
        """A generator that replays fixed teacher replies (stands in for sampling, not for the stage)."""
        name = "scripted"

        def __init__(self, replies):
            self.replies, self.calls = list(replies), 0

        def chat_prompt(self, text):
            return text

        def generate(self, prompts, params, batch_size=8, progress=None):
            from arte_core.models import Generation
            out = []
            for _ in prompts:
                self.calls += 1
                out.append(Generation(self.replies.pop(0), 10, 10, True))
            return out

    ctx.config.elicit.batch_size = 1
    first = Scripted(["True and False is</input><target>False</target>"])
    assert generate_questions(ctx, first, "draft", 1, 0.7) == 1
    second = Scripted([])
    assert generate_questions(ctx, second, "draft", 1, 0.7) == 1 and second.calls == 0  # nothing recomputed


def test_score_stores_every_item_and_never_rescores(ctx):
    seed_drafts(ctx, QUESTIONS[:2])
    assert score_drafts(ctx) == 4
    scores = ctx.store.draft_scores(ctx.run_id, ctx.config.student)
    assert len(scores) == 4 and all(0.0 <= s["accuracy"] <= 1.0 for s in scores)
    items = ctx.store.rows("SELECT * FROM icl_items")
    assert len(items) == 4 * 4
    assert score_drafts(ctx) == 0  # resumed: nothing left
    run_score(ctx)
    assert ctx.store.is_done(ctx.run_id, "score", ctx.config.student)


@pytest.mark.parametrize("engine", ["batched", "fast"])
def test_a_killed_score_keeps_every_draft_whose_answers_were_all_in(ctx, engine, monkeypatch):
    ctx.config.score.engine = engine
    seed_drafts(ctx, QUESTIONS[:3])  # 6 drafts x 4 preference items, one generate call
    generator = ctx.models.student()
    real_generate_each = generator.generate_each
    answered = []

    def killed_halfway(prompts, params, batch_size=8):
        for index, output in real_generate_each(prompts, params, batch_size=batch_size):
            if len(answered) == len(prompts) // 2:
                raise KeyboardInterrupt  # what a kill looks like from inside the stage
            answered.append(index)
            yield index, output

    monkeypatch.setattr(generator, "generate_each", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        score_drafts(ctx)
    drafts_answered = [index // 4 for index in answered]
    complete = {d for d in drafts_answered if drafts_answered.count(d) == 4}
    assert 0 < len(complete) < 6
    assert len(ctx.store.draft_scores(ctx.run_id, ctx.config.student)) == len(complete)
    monkeypatch.undo()
    assert score_drafts(ctx) == 6 - len(complete)  # the rest, and only the rest, on the rerun
    assert len(ctx.store.rows("SELECT * FROM icl_items")) == 6 * 4


def set_scores(ctx, accuracies: dict[str, float]) -> None:
    rows = [dict(rationale_id=rid, student=ctx.config.student, run_id=ctx.run_id, accuracy=acc, n_items=4,
                 n_correct=round(acc * 4), n_unparsed=0, icl_format="completion", created_at=utcnow())
            for rid, acc in accuracies.items()]
    ctx.store.insert("icl_scores", rows)


def scored_run(ctx):
    seed_drafts(ctx, QUESTIONS)
    qids = [question_id(ctx.run_id, "draft", i) for i in range(4)]
    set_scores(ctx, {rationale_id(qids[0], TECHNIQUES[0]): 1.0, rationale_id(qids[0], TECHNIQUES[1]): 0.5,
                     rationale_id(qids[1], TECHNIQUES[0]): 0.25, rationale_id(qids[1], TECHNIQUES[1]): 0.25,
                     rationale_id(qids[2], TECHNIQUES[0]): 0.0, rationale_id(qids[2], TECHNIQUES[1]): 0.75,
                     rationale_id(qids[3], TECHNIQUES[0]): 0.5, rationale_id(qids[3], TECHNIQUES[1]): 0.5})
    return qids


def test_pairs_stage_builds_question_and_rationale_pairs(ctx):
    qids = scored_run(ctx)
    assert run_pairs(ctx) == 3
    pairs = ctx.store.pairs(ctx.run_id)
    question_pairs = [p for p in pairs if p["kind"] == "question"]
    assert [(p["chosen_ref"], p["rejected_ref"]) for p in question_pairs] == [(qids[0], qids[1])]
    assert question_pairs[0]["chosen"].startswith("<input>True and False is</input>")
    rationale_pairs = sorted((p["chosen_ref"], p["rejected_ref"]) for p in pairs if p["kind"] == "rationale")
    assert rationale_pairs == [(rationale_id(qids[0], TECHNIQUES[0]), rationale_id(qids[0], TECHNIQUES[1])),
                               (rationale_id(qids[2], TECHNIQUES[1]), rationale_id(qids[2], TECHNIQUES[0]))]
    assert all("step by step" in p["prompt"] and "How to reason" not in p["prompt"]
               for p in pairs if p["kind"] == "rationale")  # technique erased


def test_dpo_records_split_question_pairs_after_the_prefill():
    pairs = [dict(kind="question", prompt="P", chosen="<input>a</input>\n<target>b</target>", rejected="<input>c</input>"),
             dict(kind="rationale", prompt="R", chosen="x", rejected="y")]
    assert dpo_records(pairs, lambda text: f"[{text}]") == [
        {"prompt": "[P]<input>", "chosen": "a</input>\n<target>b</target>", "rejected": "c</input>"},
        {"prompt": "[R]", "chosen": "x", "rejected": "y"}]


@pytest.mark.slow
def test_align_distill_evaluate_on_a_tiny_model(ctx):
    scored_run(ctx)
    run_pairs(ctx)
    adapter = run_align(ctx)
    artifact = ctx.store.artifact(ctx.run_id, ADAPTER)
    assert artifact["path"] == adapter and (ctx.run_dir / "align" / "adapter" / "adapter_config.json").is_file()
    assert ctx.store.train_logs(ctx.run_id, ADAPTER), "DPO losses are logged"
    assert run_align(ctx) == adapter  # resumed: not retrained

    # Regenerated data as the aligned teacher would store it (a random model writes no parsable question).
    arte_q = question_id(ctx.run_id, "arte", 0)
    ctx.store.insert("questions", [dict(question_id=arte_q, run_id=ctx.run_id, origin="arte", idx=0,
                                        input="not not True is", target="True", solver_target="True",
                                        solver_agrees=True, teacher="aligned", call_index=0, created_at=utcnow())])
    ctx.store.insert("rationales", [dict(rationale_id=rationale_id(arte_q, "step_by_step"), question_id=arte_q,
                                         run_id=ctx.run_id, origin="arte", technique="step_by_step", prompt="p",
                                         text="not not True = True. So the answer is True.", answer="True",
                                         answer_parsed=True, matches_target=True, word_count=6, n_tokens=9,
                                         teacher="aligned", temperature=0.0, seed=0, created_at=utcnow())])
    assert len(original_examples(ctx, ctx.config.student)) == 4  # best draft per question
    paths = run_distill(ctx)
    assert set(paths) == {"original", "arte"}
    assert len(ctx.store.sft_examples(ctx.run_id, "original")) == 1  # sized to the smaller dataset
    table = run_evaluate(ctx)
    assert {(r["variant"], r["shots"]) for r in table} == {(v, k) for v in ("untrained", "original", "arte") for k in (0, 3)}
    assert all(r["n_items"] == 3 for r in table)
    assert len(ctx.store.rows("SELECT * FROM eval_items")) == 18

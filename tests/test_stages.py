"""Every stage on a tiny random model, against a real DuckDB file.

A random model cannot write a parsable question, so elicit is tested for its failure path here and
for its keep/dedupe/solver path on literal teacher text; the real-model test runs it for real.
"""

import dataclasses
import json

import pytest
import yaml

from arte_core.config import RunConfig
from arte_core.context import open_run
from arte_core.errors import ArteError
from arte_core.parsing import Deduplicator
from arte_core.pipeline import run_stage, stage_function
from arte_core.progress import Reporter
from arte_core.stages.align import ADAPTER, dpo_records, run_align
from arte_core.stages.distill import best_draft_examples
from arte_core.stages.elicit import _keep_questions, generate_questions, question_id, rationale_id
from arte_core.stages.registry import STAGES, producer
from arte_core.stages.score import score_drafts
from arte_core.store import Store, utcnow
from helpers import TECHNIQUES, seed_drafts



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


def add_regenerated(ctx, origin: str, student: str, question: str, text: str, temperature: float = 0.0) -> None:
    """One regenerated question with its rationale, of one student's arm, as regenerate.py stores them."""
    idx = len(ctx.store.questions(ctx.run_id, origin, student))
    qid = question_id(ctx.run_id, origin, idx, student)
    ctx.store.insert("questions", [dict(question_id=qid, run_id=ctx.run_id, origin=origin, student=student, idx=idx,
                                        input=question, target="True", solver_target="True", solver_agrees=True,
                                        teacher=origin, call_index=0, created_at=utcnow())])
    ctx.store.insert("rationales", [dict(
        rationale_id=rationale_id(qid, "step_by_step"), question_id=qid, run_id=ctx.run_id, origin=origin,
        student=student, technique="step_by_step", prompt="p", text=text, answer="True", answer_parsed=True,
        matches_target=True, word_count=len(text.split()), n_tokens=2, teacher=origin, temperature=temperature,
        seed=0, created_at=utcnow())])


def stored_config(ctx) -> dict:
    return yaml.safe_load(ctx.store.run(ctx.run_id)["config_yaml"])


def ran_with(ctx, stage: str, scope: str = "") -> dict:
    return json.loads(ctx.store.scalar("SELECT config_json FROM stage_status WHERE run_id = ? AND stage = ? AND "
                                       "scope = ?", [ctx.run_id, stage, scope]))


def test_the_stored_config_says_what_each_stage_ran_with_not_what_the_run_was_created_with(ctx, monkeypatch):
    """Issue 16: the demo's stored config said question temperature 1.0 while its regeneration ran at 0.7."""
    assert stored_config(ctx)["regenerate"]["question_temperature"] == 1.0  # as created
    scored_run(ctx)
    ctx.config.pairs.n_question_pairs = 1  # a later call with a changed non-identity setting
    run_stage(ctx, "pairs")
    assert stored_config(ctx)["pairs"]["n_question_pairs"] == 1
    assert ran_with(ctx, "pairs", ctx.config.student)["pairs"]["n_question_pairs"] == 1

    def regenerate_as_asked(ctx, student):  # writes what the real stage writes, at the call's temperature
        for origin in ("base", "arte"):
            add_regenerated(ctx, origin, student, "True is", "True.", ctx.config.regenerate.question_temperature)

    monkeypatch.setattr("arte_core.stages.regenerate.run_regenerate", regenerate_as_asked)
    ctx.store.add_artifact(ctx.run_id, ADAPTER, "adapter", "/adapter")
    ctx.config.regenerate.question_temperature, ctx.config.backend = 0.7, "transformers"
    run_stage(ctx, "regenerate")
    used = ctx.store.scalar("SELECT temperature FROM rationales WHERE run_id = ? AND origin = 'arte'", [ctx.run_id])
    assert stored_config(ctx)["regenerate"]["question_temperature"] == used == 0.7
    assert ran_with(ctx, "regenerate", ctx.config.student) == {"backend": "transformers", "trust_remote_code": False,
                                           "runs_dir": ctx.config.runs_dir,
                                           "regenerate": dataclasses.asdict(ctx.config.regenerate)}
    assert stored_config(ctx)["pairs"]["n_question_pairs"] == 1  # other sections keep what their stage ran with

    # Another student's pairs are recorded with their stage, and leave the run's (own student's) config alone.
    other = "another-student"
    ctx.store.insert("icl_scores", [dict(r, student=other) for r in ctx.store.rows(
        "SELECT * FROM icl_scores WHERE run_id = ?", [ctx.run_id])])
    ctx.store.insert("icl_items", [dict(r, student=other) for r in ctx.store.rows(
        "SELECT * FROM icl_items WHERE student = ?", [ctx.config.student])])
    ctx.config.pairs.n_question_pairs = 2
    run_stage(ctx, "pairs", other)
    assert ran_with(ctx, "pairs", other)["pairs"]["n_question_pairs"] == 2
    assert stored_config(ctx)["pairs"]["n_question_pairs"] == 1


def test_elicit_with_a_teacher_that_writes_nothing_parsable_fails_clearly(ctx):
    with pytest.raises(ArteError, match="no parsable question"):
        run_stage(ctx, "elicit")
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
    assert run_stage(ctx, "score") == {"n_scored_now": 0}
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
    """Scores with their items: a draft of accuracy a got the first 4a of the 4 preference items right."""
    rows = [dict(rationale_id=rid, student=ctx.config.student, run_id=ctx.run_id, accuracy=acc, n_items=4,
                 n_correct=round(acc * 4), n_unparsed=0, icl_format="completion", created_at=utcnow(),
                 balanced_accuracy=acc)
            for rid, acc in accuracies.items()]
    ctx.store.insert("icl_scores", rows)
    ctx.store.insert("icl_items", [dict(rationale_id=rid, student=ctx.config.student, item_index=item["item_index"],
                                        output="", answer=None, correct=k < round(acc * 4))
                                   for rid, acc in accuracies.items() for k, item in enumerate(ctx.pref_items)])


def scored_run(ctx):
    """Drafts with hand-set accuracies, ranked on accuracy and formed whatever their test says: 4 preference
    items can never reach p ≤ 0.05 (the best is 2 · 0.5⁴ = 0.125); the max_p tests set their own."""
    ctx.config.pairs.score, ctx.config.pairs.max_p = "accuracy", 1.0
    seed_drafts(ctx, QUESTIONS)
    qids = [question_id(ctx.run_id, "draft", i) for i in range(4)]
    set_scores(ctx, {rationale_id(qids[0], TECHNIQUES[0]): 1.0, rationale_id(qids[0], TECHNIQUES[1]): 0.5,
                     rationale_id(qids[1], TECHNIQUES[0]): 0.25, rationale_id(qids[1], TECHNIQUES[1]): 0.25,
                     rationale_id(qids[2], TECHNIQUES[0]): 0.0, rationale_id(qids[2], TECHNIQUES[1]): 0.75,
                     rationale_id(qids[3], TECHNIQUES[0]): 0.5, rationale_id(qids[3], TECHNIQUES[1]): 0.5})
    return qids


def test_pairs_stage_builds_question_and_rationale_pairs(ctx):
    qids = scored_run(ctx)
    assert run_stage(ctx, "pairs")["n_pairs"] == 3
    pairs = ctx.store.pairs(ctx.run_id)
    question_pairs = [p for p in pairs if p["kind"] == "question"]
    assert [(p["chosen_ref"], p["rejected_ref"]) for p in question_pairs] == [(qids[0], qids[1])]
    assert question_pairs[0]["chosen"].startswith("<input>True and False is</input>")
    rationale_pairs = sorted((p["chosen_ref"], p["rejected_ref"]) for p in pairs if p["kind"] == "rationale")
    assert rationale_pairs == [(rationale_id(qids[0], TECHNIQUES[0]), rationale_id(qids[0], TECHNIQUES[1])),
                               (rationale_id(qids[2], TECHNIQUES[1]), rationale_id(qids[2], TECHNIQUES[0]))]
    assert all("step by step" in p["prompt"] and "How to reason" not in p["prompt"]
               for p in pairs if p["kind"] == "rationale")  # technique erased


def test_every_pair_stores_its_paired_test_and_only_pairs_within_max_p_are_formed(ctx):
    scored_run(ctx)
    run_stage(ctx, "pairs")
    tested = {(p["kind"], p["p_value"], p["n_shared"], p["n_chosen_only"], p["n_rejected_only"], p["pair_test"])
              for p in ctx.store.pairs(ctx.run_id)}
    # question 0 vs 1: per item, shares of rationales right [1, 1, 1/2, 1/2] vs [1, 0, 0, 0]: better on 3 items,
    # 2 · 0.5³ = 0.25. Rationales 1.0 vs 0.5 of question 0: only the chosen right on 2 items, 2 · 0.5² = 0.5;
    # 0.75 vs 0.0 of question 2: on 3 items, 0.25.
    assert tested == {("question", 0.25, 4, 3, 0, "item_sign_test"), ("rationale", 0.5, 4, 2, 0, "mcnemar_exact"),
                      ("rationale", 0.25, 4, 3, 0, "mcnemar_exact")}
    ctx.config.pairs.max_p = 0.3  # a changed max_p rebuilds the pairs
    assert run_stage(ctx, "pairs") == {"n_pairs": 2, "n_within_noise": 1}
    assert sorted(p["p_value"] for p in ctx.store.pairs(ctx.run_id)) == [0.25, 0.25]
    assert ctx.store.stage_info(ctx.run_id, "pairs", ctx.config.student)["max_p"] == 0.3
    ctx.config.pairs.max_p = 0.05
    with pytest.raises(ArteError, match=r"no pairs: all 3 candidate pairs \(2 rationale, 1 question\) are within noise"
                                        r".* p ≤ pairs.max_p = 0.05 on the 4 preference items .*closest: 3 vs 0 "
                                        r"discordant items, p = 0.25\). On 4 items a pair needs at least 6 discordant "
                                        r"items.*score.n_pref.*--pairs.max_p"):
        run_stage(ctx, "pairs")
    assert len(ctx.store.pairs(ctx.run_id)) == 2  # the previous set is kept
    assert ctx.store.stage_info(ctx.run_id, "pairs", ctx.config.student)["max_p"] == 0.3


def test_pairs_refuse_drafts_without_item_answers(ctx):
    qids = scored_run(ctx)
    ctx.store.execute("DELETE FROM icl_items WHERE rationale_id = ?", [rationale_id(qids[2], TECHNIQUES[0])])
    with pytest.raises(ArteError, match=r"1 of 8 scored drafts .* have no per-item answers .*arte rescore"):
        run_stage(ctx, "pairs")


def set_influence(ctx, influence: dict[str, float]) -> None:
    ctx.store.insert("influence_scores", [
        dict(rationale_id=rid, student=ctx.config.student, run_id=ctx.run_id, loss_before=1.0, loss_after=1.0 + x,
             influence=x, mode="lora", learning_rate=1e-4, n_reference=4, created_at=utcnow())
        for rid, x in influence.items()])


def influenced_run(ctx):
    """scored_run plus influence scores; question 3 comes from a second elicitation call (another prompt)."""
    qids = scored_run(ctx)
    r = {(q, t): rationale_id(qids[q], TECHNIQUES[t]) for q in range(4) for t in range(2)}
    set_influence(ctx, {r[0, 0]: -0.2, r[0, 1]: 0.1,    # helpful vs harmful
                        r[1, 0]: -0.1, r[1, 1]: -0.3,   # both helpful: no rationale pair
                        r[2, 0]: 0.3, r[2, 1]: -0.1,    # harmful vs helpful
                        r[3, 0]: 0.0, r[3, 1]: -0.05})  # neutral vs helpful: no pair
    ctx.store.execute("UPDATE questions SET call_index = 1 WHERE question_id = ?", [qids[3]])
    return qids, r


def test_montessori_style_pairs_every_helpful_with_every_harmful_draft_of_one_prompt(ctx):
    qids, r = influenced_run(ctx)
    ctx.config.pairs.signal, ctx.config.pairs.style = "influence", "montessori"
    assert run_stage(ctx, "pairs")["n_pairs"] == 4
    pairs = ctx.store.pairs(ctx.run_id)
    assert {p["signal"] for p in pairs} == {"influence"} and {p["style"] for p in pairs} == {"montessori"}
    rationale = sorted((p["chosen_ref"], p["rejected_ref"]) for p in pairs if p["kind"] == "rationale")
    assert rationale == [(r[0, 0], r[0, 1]), (r[2, 1], r[2, 0])]
    # question scores (mean −influence): q0 +0.05, q1 +0.2, q2 −0.1 from call 0; q3 +0.025 alone in call 1
    question = sorted((p["chosen_ref"], p["rejected_ref"]) for p in pairs if p["kind"] == "question")
    assert question == [(qids[0], qids[2]), (qids[1], qids[2])]
    assert ctx.store.stage_info(ctx.run_id, "pairs", ctx.config.student) == {
        "n_pairs": 4, "n_within_noise": 0, "signal": "influence", "style": "montessori", "neutral": "auto"}
    assert {(p["p_value"], p["pair_test"]) for p in pairs} == {
        (None, "none: influence is one reference-loss change per draft, no per-item outcome to pair")}


def test_when_every_draft_helps_montessori_pairs_need_the_median_as_neutral_point(ctx):
    qids, r = influenced_run(ctx)
    ctx.store.execute("UPDATE influence_scores SET influence = influence - 1")  # every step lowers the loss
    ctx.config.pairs.signal, ctx.config.pairs.style = "influence", "montessori"
    with pytest.raises(ArteError, match=r"no pairs: 8 drafts score above the neutral point \(\+0\) and 0 below it"
                                        r".*pairs.neutral: median"):
        run_stage(ctx, "pairs")
    assert not ctx.store.is_done(ctx.run_id, "pairs", ctx.config.student)  # nothing built: not done
    ctx.config.pairs.neutral = "median"  # relative to the typical draft: the same split as the raw influences'
    assert run_stage(ctx, "pairs")["n_pairs"] > 0
    rationale = sorted((p["chosen_ref"], p["rejected_ref"]) for p in ctx.store.pairs(ctx.run_id) if p["kind"] == "rationale")
    assert (r[0, 0], r[0, 1]) in rationale and (r[2, 1], r[2, 0]) in rationale


def test_a_new_signal_replaces_the_pair_set_and_old_decisions_return_with_their_pairs(ctx):
    from arte_core.store import decisions

    influenced_run(ctx)
    student = ctx.config.student
    run_stage(ctx, "pairs")
    icl_ids = {p["pair_id"] for p in ctx.store.pairs(ctx.run_id)}
    assert icl_ids
    excluded = sorted(icl_ids)[0]
    decisions.add_decision(ctx.store, excluded, "exclude", "alice", "off-topic")
    assert excluded not in {p["pair_id"] for p in ctx.store.training_pairs(ctx.run_id, student)}

    ctx.config.pairs.signal = "influence"
    run_stage(ctx, "pairs")
    influence_ids = {p["pair_id"] for p in ctx.store.pairs(ctx.run_id)}
    assert influence_ids and not influence_ids & icl_ids  # the ids carry the signal
    assert {p["pair_id"] for p in ctx.store.training_pairs(ctx.run_id, student)} == influence_ids  # DPO sees one set

    ctx.config.pairs.signal, ctx.config.pairs.style = "both", "montessori"
    run_stage(ctx, "pairs")
    assert {(p["signal"], p["style"]) for p in ctx.store.pairs(ctx.run_id)} == {("both", "montessori")}

    ctx.config.pairs.signal, ctx.config.pairs.style = "icl", "arte"
    assert run_stage(ctx, "pairs")["n_pairs"] == len(icl_ids)
    assert {p["pair_id"] for p in ctx.store.pairs(ctx.run_id)} == icl_ids
    assert {p["pair_id"] for p in ctx.store.training_pairs(ctx.run_id, student)} == icl_ids - {excluded}
    before = ctx.store.rows("SELECT pair_id, created_at FROM pairs ORDER BY pair_id")
    assert run_stage(ctx, "pairs") is None  # built already: nothing rewritten
    assert ctx.store.rows("SELECT pair_id, created_at FROM pairs ORDER BY pair_id") == before


def test_pairs_from_a_signal_without_scores_fail_with_what_to_run(ctx):
    scored_run(ctx)
    ctx.config.pairs.signal = "both"
    with pytest.raises(ArteError, match="no drafts scored by both signals .* run `arte score` and `arte influence`"):
        run_stage(ctx, "pairs")
    ctx.config.pairs.signal, ctx.config.pairs.style = "influence", "montessori"
    with pytest.raises(ArteError, match="no influence scores .* run `arte influence`"):
        run_stage(ctx, "pairs")
    assert ctx.store.pairs(ctx.run_id) == []
    assert not ctx.store.is_done(ctx.run_id, "pairs", ctx.config.student)


def test_dpo_records_split_question_pairs_after_the_prefill():
    pairs = [dict(kind="question", prompt="P", chosen="<input>a</input>\n<target>b</target>", rejected="<input>c</input>"),
             dict(kind="rationale", prompt="R", chosen="x", rejected="y")]
    assert dpo_records(pairs, lambda text: f"[{text}]") == [
        {"prompt": "[P]<input>", "chosen": "a</input>\n<target>b</target>", "rejected": "c</input>"},
        {"prompt": "[R]", "chosen": "x", "rejected": "y"}]


@pytest.mark.slow
def test_align_distill_evaluate_on_a_tiny_model(ctx):
    scored_run(ctx)
    run_stage(ctx, "pairs")
    adapter = run_stage(ctx, "align")
    artifact = ctx.store.artifact(ctx.run_id, ADAPTER)
    student_dir = ctx.student_dir(ctx.config.student)
    assert artifact["path"] == adapter and (student_dir / "align" / "adapter" / "adapter_config.json").is_file()
    assert json.loads(artifact["metrics_json"])["pair_signal"] == "icl"  # what the teacher learnt from
    assert ctx.store.train_logs(ctx.run_id, ADAPTER), "DPO losses are logged"
    assert run_stage(ctx, "align") is None  # done: skipped
    assert run_align(ctx, ctx.config.student) == adapter  # resumed inside the stage: the saved adapter, not retrained

    # Both arms as regenerate would store them (a random model writes no parsable question); the base arm is
    # one example longer, and every arm is cut to the smallest.
    student = ctx.config.student
    for origin, n in (("base", 2), ("arte", 1)):
        for i in range(n):
            add_regenerated(ctx, origin, student, f"not not True is {i}", "not not True = True. So the answer is True.")
    assert len(best_draft_examples(ctx, student)) == 4  # best draft per question
    ctx.config.distill.arms = ["original", "arte", "best_drafts"]
    paths = run_stage(ctx, "distill")
    assert set(paths) == {"original", "arte", "best_drafts"}
    assert all(len(ctx.store.sft_examples(ctx.run_id, arm)) == 1 for arm in paths)  # sized to the smallest arm
    assert all(path.startswith(str(student_dir / "distill")) for path in paths.values())
    table = run_stage(ctx, "evaluate")
    assert {(r["variant"], r["shots"]) for r in table} == {(v, k) for v in ("untrained", "original", "arte", "best_drafts")
                                                           for k in (0, 3)}
    assert all(r["n_items"] == 3 and r["student"] == student for r in table)
    assert len(ctx.store.rows("SELECT * FROM eval_items")) == 24
    assert set(ctx.store.stages_done(ctx.run_id)) == {f"{stage}:{student}" for stage in ("pairs", "align", "distill", "evaluate")}


# -- the registry's rules, for every stage ----------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in STAGES if STAGES[n].reads and n not in ("elicit", "evaluate")])
def test_a_stage_whose_inputs_are_empty_refuses_with_the_command_to_run_first(ctx, name):
    maker = producer(STAGES[name].reads[0])
    with pytest.raises(ArteError, match=f"`arte {name}` needs .* none: run `arte {maker}`.* first"):
        run_stage(ctx, name)
    assert ctx.store.stages_done(ctx.run_id) == []


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_that_writes_nothing_is_never_marked_done(ctx, name, monkeypatch):
    assert STAGES[name].writes, "every stage declares what it writes"
    monkeypatch.setattr("arte_core.pipeline.check_inputs", lambda *args: None)
    monkeypatch.setattr("arte_core.pipeline.stage_function", lambda _name: lambda ctx, student: None)
    with pytest.raises(ArteError, match=f"`arte {name}` finished without writing .* not marked done"):
        run_stage(ctx, name)
    assert ctx.store.stages_done(ctx.run_id) == []


def test_every_registered_stage_function_exists():
    for name in STAGES:
        assert callable(stage_function(name))


def test_score_before_elicit_refuses_on_the_command_line_and_marks_nothing(tmp_path, tiny_model_dir, capsys):
    from arte_core.cli import main

    db = tmp_path / "cli.duckdb"
    args = ["--db", str(db), "--student", tiny_model_dir, "--teacher", tiny_model_dir,
            "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(["score", *args]) == 2
    assert "run `arte elicit` first" in capsys.readouterr().err
    with Store(db, read_only=True) as store:
        assert store.rows("SELECT * FROM stage_status") == []


def test_rescore_scores_anew_only_the_drafts_an_older_version_scored(ctx):
    seed_drafts(ctx, QUESTIONS[:2])
    run_stage(ctx, "score")
    student = ctx.config.student
    old = sorted(ctx.store.scored_rationale_ids(ctx.run_id, student))[:2]
    kept = ctx.store.rows("SELECT rationale_id, created_at FROM icl_scores WHERE rationale_id NOT IN (?, ?)", old)
    for rid in old:  # what an upgraded schema-2 store holds: no parse modes, no balanced accuracy
        ctx.store.execute("UPDATE icl_items SET parse_mode = NULL, truncated = NULL WHERE rationale_id = ?", [rid])
        ctx.store.execute("UPDATE icl_scores SET balanced_accuracy = NULL WHERE rationale_id = ?", [rid])
    with pytest.raises(ArteError, match="2 of 4 drafts .* `arte rescore`"):
        run_stage(ctx, "pairs")
    assert run_stage(ctx, "rescore") == {"n_dropped": 2, "n_scored_now": 2}
    assert ctx.store.scalar("SELECT count(*) FROM icl_items WHERE parse_mode IS NULL") == 0
    assert ctx.store.scalar("SELECT count(*) FROM icl_scores WHERE balanced_accuracy IS NULL") == 0
    assert ctx.store.rows("SELECT rationale_id, created_at FROM icl_scores WHERE rationale_id NOT IN (?, ?)",
                          old) == kept  # newer scores are not recomputed
    assert ctx.store.is_done(ctx.run_id, "rescore", student)

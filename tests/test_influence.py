"""Local data influence (issue 5): the probe's sign, exact in-place restore, the stage and its store SQL."""

import math
import random

import pytest
import torch

from arte_core.config import EvalConfig, RunConfig, ScoreConfig
from arte_core.context import open_run
from arte_core.errors import ArteError
from arte_core.pipeline import run_stage
from arte_core.stages.pairs import build_pairs, load_signal_scores
from arte_core.stages.influence import (
    InfluenceConfig,
    batch_tensors,
    build_probe,
    check_config,
    encode,
    per_item_loss,
)
from arte_core.progress import Reporter
from arte_core.store import Store, utcnow
from arte_core.stats import average_ranks
from arte_core.store.signals import influence_rows, signal_comparison

PROMPT = "Evaluate the result of a random Boolean expression.\n\nQ: {}\nA: Let's think step by step."
REFERENCE = [{"prompt": PROMPT.format(q), "completion": " So the answer is True."}
             for q in ("True and True is", "not False is", "True or False is", "not not True is")]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: with two threads on a shared machine, thread barriers cost 100× the math."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from arte_core.models import load_causal_lm

    return load_causal_lm(tiny_model_dir)


def fresh_model(tiny_model_dir):
    from arte_core.models import load_causal_lm

    model, _ = load_causal_lm(tiny_model_dir)
    return model


def make_probe(tiny_model_dir, tokenizer, warmup=(), **cfg):
    torch.manual_seed(0)  # same LoRA initialisation for every probe built here
    return build_probe(fresh_model(tiny_model_dir), tokenizer, InfluenceConfig(**cfg), REFERENCE, list(warmup))


def enc(tokenizer, example):
    return encode(tokenizer, example["prompt"], example["completion"], 768)


def random_draft(tokenizer, seed):
    rng = random.Random(seed)
    return {"prompt": REFERENCE[0]["prompt"], "completion": tokenizer.decode([rng.randrange(1000, 40000) for _ in range(10)])}


def other_drafts(tokenizer):
    return [random_draft(tokenizer, 7), {"prompt": PROMPT.format("False or False is"), "completion": " So the answer is False."},
            REFERENCE[2]]


# -- the probe --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [dict(mode="lora", optimizer="adamw", learning_rate=1e-2),
                                 dict(mode="full", optimizer="sgd", learning_rate=1e-2)])
def test_draft_like_the_reference_helps_more_than_random_tokens(tiny_model_dir, tiny, cfg):
    _, tokenizer = tiny
    probe = make_probe(tiny_model_dir, tokenizer, **cfg)
    before, after = probe.probe(enc(tokenizer, REFERENCE[0]))
    helpful = after - before
    noise = [probe.probe(enc(tokenizer, random_draft(tokenizer, seed)))[1] - before for seed in range(3)]
    assert helpful < 0, "a step on a reference item must lower the mean reference loss"
    assert helpful < min(noise) - 0.1, (helpful, noise)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_probes_restore_params_and_adam_state_bit_identically(tiny_model_dir, tiny, mode):
    _, tokenizer = tiny
    # warm-up first, so Adam's step counters and moments are non-trivial when the snapshot is taken
    probe = make_probe(tiny_model_dir, tokenizer, warmup=REFERENCE[1:3], mode=mode, learning_rate=1e-2)
    model, optimizer = probe.model, probe.optimizer
    params_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state_before = {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    assert state_before and all(float(s["step"]) == 2.0 for s in state_before.values())

    results = [probe.probe(enc(tokenizer, draft)) for draft in other_drafts(tokenizer) * 2]

    assert all(torch.equal(v, params_before[k]) for k, v in model.state_dict().items())
    state_after = {id(p): s for p, s in optimizer.state.items()}
    assert state_after.keys() == state_before.keys()
    for pid, saved in state_before.items():
        assert state_after[pid].keys() == saved.keys()
        assert all(torch.equal(state_after[pid][k], v) for k, v in saved.items())
    assert len({before for before, _ in results}) == 1 and results[0][0] == probe.reference_loss()
    assert all(after != before for before, after in results)  # each probe really moved the student
    assert results[:3] == results[3:]  # the same draft from the same state: the same loss, exactly


def test_fresh_optimizer_state_is_restored_to_empty(tiny_model_dir, tiny):
    _, tokenizer = tiny
    probe = make_probe(tiny_model_dir, tokenizer, mode="lora", learning_rate=1e-2)
    assert not probe.optimizer.state
    first = probe.probe(enc(tokenizer, REFERENCE[0]))
    probe.probe(enc(tokenizer, random_draft(tokenizer, 1)))
    assert not probe.optimizer.state
    assert probe.probe(enc(tokenizer, REFERENCE[0])) == first


def test_restored_probe_equals_a_freshly_built_one(tiny_model_dir, tiny):
    """What the reload-from-disk baseline does: a new student and optimizer per probe."""
    _, tokenizer = tiny
    warm = REFERENCE[1:3]
    reused = make_probe(tiny_model_dir, tokenizer, warmup=warm, mode="full", learning_rate=1e-3)
    drafts = other_drafts(tokenizer)
    reused_after = [reused.probe(enc(tokenizer, d))[1] for d in drafts]
    fresh_after = [make_probe(tiny_model_dir, tokenizer, warmup=warm, mode="full", learning_rate=1e-3)
                   .probe(enc(tokenizer, d))[1] for d in drafts]
    assert reused_after == pytest.approx(fresh_after, abs=1e-6)


def test_reference_loss_does_not_depend_on_batching(tiny_model_dir, tiny):
    _, tokenizer = tiny
    losses = [make_probe(tiny_model_dir, tokenizer, reference_batch_size=size).loss_before for size in (1, 3, 8)]
    assert losses == pytest.approx([losses[0]] * 3, abs=1e-4)


def test_batched_item_losses_match_the_models_own_loss(tiny):
    """Left padding and the kept logits must cover exactly the completion tokens of every row."""
    model, tokenizer = tiny
    examples = [enc(tokenizer, e) for e in [REFERENCE[0], random_draft(tokenizer, 3),
                                            {"prompt": "Q: x\nA:", "completion": " a much longer completion than the rest"}]]
    with torch.no_grad():
        batched = per_item_loss(model, batch_tensors(examples, tokenizer.pad_token_id))
        own = [model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss for e in examples]
    assert batched.tolist() == pytest.approx([float(x) for x in own], abs=1e-4)


def test_encode_masks_the_prompt_and_keeps_the_completion_when_truncating(tiny):
    _, tokenizer = tiny
    full = encode(tokenizer, REFERENCE[0]["prompt"], REFERENCE[0]["completion"], 768)
    supervised = [t for t in full.labels if t != -100]
    assert tokenizer.decode(supervised) == " So the answer is True." + tokenizer.eos_token
    short = encode(tokenizer, REFERENCE[0]["prompt"], REFERENCE[0]["completion"], len(supervised) + 2)
    assert len(short.input_ids) == len(supervised) + 2 and short.labels[-len(supervised):] == supervised


def test_check_config_names_the_bad_field():
    check_config(InfluenceConfig())
    with pytest.raises(ArteError, match="influence.mode"):
        check_config(InfluenceConfig(mode="half"))
    with pytest.raises(ArteError, match="influence.optimizer"):
        check_config(InfluenceConfig(optimizer="adam"))
    with pytest.raises(ArteError, match="'influence.device' is 'tpu'; choose one of auto, cpu, cuda"):
        check_config(InfluenceConfig(device="tpu"))


# -- the stage on a store ---------------------------------------------------------------------------


def draft_rows(run_id, drafts):
    """questions and rationales rows (shapes as elicit writes them) for {question: [(technique, text)]}."""
    questions, rationales = [], []
    for idx, (question, techniques) in enumerate(drafts.items()):
        qid = f"{run_id}:draft:q{idx:05d}"
        target = "True" if eval(question.removesuffix(" is")) else "False"  # noqa: S307 - our own literals
        questions.append(dict(question_id=qid, run_id=run_id, origin="draft", idx=idx, input=question, target=target,
                              solver_target=target, solver_agrees=True, teacher="t", call_index=0, created_at=utcnow()))
        for technique, text in techniques:
            rationales.append(dict(
                rationale_id=f"{qid}:{technique}", question_id=qid, run_id=run_id, origin="draft", technique=technique,
                prompt="p", text=text, answer=target, answer_parsed=True, matches_target=True,
                word_count=len(text.split()), n_tokens=len(text.split()), teacher="t", temperature=0.7, seed=0,
                created_at=utcnow()))
    return questions, rationales


DRAFTS = {
    "not ( True and False ) is": [("common_sense", "The bracket is False, and not False is True. <ans>True</ans>"),
                                  ("expert_procedure", "zq vv plonk ( ( ) wibble <ans>True</ans>")],
    "False or not True is": [("common_sense", "not True is False, and False or False is False. <ans>False</ans>"),
                             ("expert_procedure", "Flip, then join: the result is False. <ans>False</ans>")],
}


def open_ctx(tmp_path, student, n_pref=4, **influence):
    store = Store(tmp_path / "store.duckdb")
    config = RunConfig(teacher=student, student=student, runs_dir=str(tmp_path / "runs"),
                       score=ScoreConfig(n_pref=n_pref), eval=EvalConfig(n_test=4))
    ctx = open_run(config, store, Reporter(None, show_bar=False))
    ctx.config.influence = InfluenceConfig(**influence)
    questions, rationales = draft_rows(ctx.run_id, DRAFTS)
    with store.transaction():
        store.insert("questions", questions)
        store.insert("rationales", rationales)
    return ctx


def test_run_influence_scores_every_draft_once_and_resumes_exactly(tmp_path, tiny_model_dir):
    ctx = open_ctx(tmp_path, tiny_model_dir, learning_rate=1e-2, warmup_fraction=0.5)
    assert run_stage(ctx, "influence")["n_probed"] == 4
    rows = influence_rows(ctx.store, ctx.run_id, tiny_model_dir)
    assert sorted(r["rationale_id"] for r in rows) == sorted(r["rationale_id"] for r in ctx.store.rationales(ctx.run_id))
    assert all(r["influence"] == pytest.approx(r["loss_after"] - r["loss_before"]) for r in rows)
    assert len({r["loss_before"] for r in rows}) == 1 and all(r["n_reference"] == 4 for r in rows)
    assert ctx.store.is_done(ctx.run_id, "influence", tiny_model_dir)
    # every probe stores each reference item's losses; their means are the draft's stored losses
    items = ctx.store.rows("SELECT * FROM influence_items ORDER BY rationale_id, item_index")
    assert len(items) == 4 * 4 and {i["item_index"] for i in items} == {p["item_index"] for p in ctx.pref_items}
    for row in rows:
        mine = [i for i in items if i["rationale_id"] == row["rationale_id"]]
        assert sum(i["loss_before"] for i in mine) / 4 == pytest.approx(row["loss_before"], abs=1e-12)
        assert sum(i["loss_after"] for i in mine) / 4 == pytest.approx(row["loss_after"], abs=1e-12)
    assert len({i["loss_after"] for i in items}) > 4  # items differ: the losses are per item, not the mean copied

    assert run_stage(ctx, "influence") is None  # done: nothing recomputed, nothing written
    assert ctx.store.scalar("SELECT count(*) FROM influence_scores") == 4

    # an interrupted run: one row missing and the stage not marked done; the warm-up is rebuilt identically
    lost = rows[1]
    ctx.store.execute("DELETE FROM influence_scores WHERE rationale_id = ?", [lost["rationale_id"]])
    ctx.store.execute("DELETE FROM stage_status WHERE stage = 'influence'")
    ctx.store.execute("DELETE FROM influence_items WHERE rationale_id = ?", [lost["rationale_id"]])
    assert run_stage(ctx, "influence")["n_probed"] == 1
    assert ctx.store.scalar("SELECT count(*) FROM influence_items") == 16
    again = {r["rationale_id"]: r for r in influence_rows(ctx.store, ctx.run_id, tiny_model_dir)}
    assert again[lost["rationale_id"]]["influence"] == pytest.approx(lost["influence"], abs=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")
def test_asking_for_a_missing_gpu_fails_before_anything_loads(tmp_path, tiny_model_dir):
    ctx = open_ctx(tmp_path, tiny_model_dir, device="cuda")
    with pytest.raises(ArteError, match="'influence.device' is 'cuda' but torch sees no CUDA device"):
        run_stage(ctx, "influence")
    assert not ctx.store.is_done(ctx.run_id, "influence", tiny_model_dir)
    assert ctx.store.scalar("SELECT count(*) FROM influence_scores") == 0
    ctx.config.influence.device = "auto"  # no GPU: the CPU
    assert run_stage(ctx, "influence")["n_probed"] == 4


def test_influence_scores_build_pairs(tmp_path, tiny_model_dir):
    ctx = open_ctx(tmp_path, tiny_model_dir, learning_rate=1e-2)
    run_stage(ctx, "influence")
    scores = load_signal_scores(ctx, tiny_model_dir, "influence")
    needed = {"rationale_id", "question_id", "question", "target", "text", "technique", "question_idx", "score"}
    assert scores and all(needed <= row.keys() and row["score"] == -row["influence"] for row in scores)
    pairs = build_pairs(ctx, tiny_model_dir, "influence")
    by_id = {r["rationale_id"]: r["score"] for r in scores}
    rationale_pairs = [p for p in pairs if p["kind"] == "rationale"]
    assert pairs and all(p["signal"] == "influence" for p in pairs)
    assert len(rationale_pairs) == 2 and any(p["kind"] == "question" for p in pairs)
    for pair in rationale_pairs:  # chosen = the draft whose step lowered the reference loss more
        assert by_id[pair["chosen_ref"]] > by_id[pair["rejected_ref"]] == pair["rejected_score"]


# -- comparison with ICL accuracy -------------------------------------------------------------------


def test_signal_comparison_spearman_and_disagreements(tmp_path):
    store = Store(tmp_path / "store.duckdb")
    questions, rationales = draft_rows("r", DRAFTS)
    ids = [r["rationale_id"] for r in rationales]
    accuracy = [1.0, 0.75, 0.5, 0.0]
    influence = [-0.3, -0.2, 0.1, -0.1]  # helps: 0 > 1 > 3 > 2; accuracy: 0 > 1 > 2 > 3
    with store.transaction():
        store.insert("questions", questions)
        store.insert("rationales", rationales)
        store.insert("icl_scores", [dict(rationale_id=i, student="s", run_id="r", accuracy=a, n_items=4,
                                         n_correct=int(4 * a), n_unparsed=0, icl_format="completion", created_at=utcnow())
                                    for i, a in zip(ids, accuracy)])
        store.insert("influence_scores", [dict(rationale_id=i, student="s", run_id="r", loss_before=1.0,
                                               loss_after=1.0 + x, influence=x, mode="lora", learning_rate=1e-4,
                                               n_reference=4, created_at=utcnow()) for i, x in zip(ids, influence)])
    result = signal_comparison(store, "r", "s")
    assert result["n"] == 4 and result["spearman"] == pytest.approx(0.8)
    # Fisher z of .8 with Bonett-Wright's se sqrt((1 + .32) / 1): atanh(.8) = 1.098612 -+ 1.959964 * 1.148913
    assert (result["ci_low"], result["ci_high"]) == (pytest.approx(math.tanh(1.098612 - 2.251829), abs=1e-5),
                                                     pytest.approx(math.tanh(1.098612 + 2.251829), abs=1e-5))
    # 4 drafts: rho = 1 - sum(d^2) / 10 over 24 orders; |rho| >= .8 for the identity and the 3 swaps of
    # neighbours (rho 1, .8) and their 4 reversals: 8 of 24, so 2000 shuffles give p near 1/3
    assert result["null"]["p"] == pytest.approx(8 / 24, abs=0.03) and result["null"]["low"] < 0 < result["null"]["high"]
    assert result["disagreements"] == []  # drafts 2 and 3 swap places within the bottom half
    assert set(result["rows"][0]) == {"rationale_id", "question", "technique", "word_count", "accuracy", "icl_score",
                                      "influence"}
    assert result["icl_score_name"] == "accuracy"  # no balanced accuracies stored

    store.execute("UPDATE influence_scores SET influence = -influence")  # the opposite preference
    flipped = signal_comparison(store, "r", "s")
    assert flipped["spearman"] == pytest.approx(-0.8)
    # ranks by accuracy 4 3 2 1, by -influence 1 2 4 3: distances 3, 1, 2, 2 -> largest first, ties in order
    assert [(r["rationale_id"], r["rank_distance"]) for r in flipped["disagreements"]] == [
        (ids[0], 3.0), (ids[2], 2.0), (ids[3], 2.0), (ids[1], 1.0)]
    assert signal_comparison(store, "r", "other")["spearman"] is None


def test_average_ranks_share_ties():
    assert average_ranks([0.5, 0.1, 0.5, 0.9]) == [2.5, 1.0, 2.5, 4.0]


# -- the real student -------------------------------------------------------------------------------


@pytest.mark.slow
def test_influence_with_smollm2_in_lora_mode(tmp_path, smollm2_path):
    ctx = open_ctx(tmp_path, smollm2_path, n_pref=6, learning_rate=1e-4, mode="lora")
    ctx.store.execute("DELETE FROM rationales WHERE technique = 'expert_procedure' AND question_id LIKE '%q00001'")
    assert run_stage(ctx, "influence")["n_probed"] == 3
    rows = {r["rationale_id"].rsplit(":", 1)[1] + r["question_id"][-1]: r
            for r in influence_rows(ctx.store, ctx.run_id, smollm2_path)}
    assert len({r["loss_before"] for r in rows.values()}) == 1
    assert all(math.isfinite(r["influence"]) and r["influence"] != 0 for r in rows.values())
    # a sound worked example helps the student's answers more than gibberish on the same question
    assert rows["common_sense0"]["influence"] < rows["expert_procedure0"]["influence"]

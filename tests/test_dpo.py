"""The teacher's DPO is seen to move (issue 16): warm-up never spends a short run's steps at learning rate 0,
TRL's rewards are stored for every step, a teacher that did not move is named in the log, in the adapter's
record and by `arte health` at one threshold, and the default settings move a LoRA teacher."""

import json

import pytest
from test_stages import ctx, scored_run  # noqa: F401  (the fixture and the scored drafts of a tiny run)

from arte_core.config.run import DPO_UNMOVED_NATS, AlignConfig
from arte_core.health import MARGIN_NATS_BAD, dpo_lines
from arte_core.pipeline import run_stage
from arte_core.stages.align import ADAPTER, REWARD_KEYS, dpo_outcome
from arte_core.store import Store
from arte_core.training import examples_hash, optimizer_steps, warmup_steps

# The shipped demo's last DPO step (issue 16): margin 0.0016 at beta 0.1 after one update at 5e-5.
DEMO_LAST_STEP = {"step": 3, "loss": 0.6924, "rewards/margins": 0.0016, "rewards/accuracies": 0.75}


def test_warm_up_is_whole_steps_rounded_down_so_a_short_run_trains_from_its_first_step():
    assert warmup_steps(0.1, 3) == 0  # the demo's 3 steps: transformers rounded 0.3 up and spent step 1 at rate 0
    assert warmup_steps(0.1, 9) == 0 and warmup_steps(0.1, 10) == 1 and warmup_steps(0.1, 25) == 2
    assert warmup_steps(0.0, 100) == 0
    assert optimizer_steps(12, per_device_batch_size=2, batch_size=4, epochs=1.0) == 3  # the demo's align
    assert optimizer_steps(13, per_device_batch_size=2, batch_size=4, epochs=1.0) == 4  # a short last batch steps
    assert optimizer_steps(12, per_device_batch_size=8, batch_size=4, epochs=2.0) == 6  # per-device cut to batch


def test_a_final_margin_of_about_zero_warns_that_the_teacher_is_unchanged():
    outcome = dpo_outcome([{"step": 1, "loss": 0.6931, "rewards/margins": 0.0}, DEMO_LAST_STEP], beta=0.1)
    assert outcome["moved"] is False and outcome["margin_nats"] == pytest.approx(0.016)
    assert outcome["final_reward_margin"] == 0.0016 and outcome["final_reward_accuracy"] == 0.75
    assert outcome["warning"].startswith("the teacher is unchanged: final DPO reward margin 0.0016 at step 3 of 2")
    assert "align.learning_rate" in outcome["warning"]
    moved = dpo_outcome([dict(DEMO_LAST_STEP, **{"rewards/margins": 0.011})], beta=0.1)  # 0.11 nats
    assert moved["moved"] is True and moved["warning"] is None
    assert dpo_outcome([{"step": 1, "loss": 0.69}], beta=0.1)["moved"] is None  # no rewards logged: unknown


@pytest.mark.parametrize("margin", [0.0099, 0.01, 0.0101])
def test_align_and_health_judge_the_margin_by_one_threshold(tmp_path, margin):
    assert MARGIN_NATS_BAD is DPO_UNMOVED_NATS
    logs = [dict(DEMO_LAST_STEP, **{"rewards/margins": margin})]
    with Store(tmp_path / "s.duckdb") as store:
        store.ensure_run("r", "boolean_expressions", "builtin", "teacher", "student", "fp", "")
        store.add_artifact("r", ADAPTER, "adapter", "/a", {"n_pairs": 12, **dpo_outcome(logs, 0.1)}, logs)
        line = {line.key: line for line in dpo_lines(store, "r", 0.1)}["dpo_reward_margin"]
    assert (line.status == "bad") == (not dpo_outcome(logs, 0.1)["moved"])


@pytest.mark.slow
def test_the_default_settings_move_a_lora_teacher_and_every_step_stores_its_rewards(ctx, capsys):  # noqa: F811
    # The defaults, sized for the tiny model; 3 epochs, because in one epoch every logged batch is a pair not yet
    # trained on, and a random model's preference on 3 pairs does not carry over from one pair to the next.
    ctx.config.align = AlignConfig(batch_size=2, max_length=256, epochs=3)
    scored_run(ctx)
    run_stage(ctx, "pairs")
    n_pairs = len(ctx.store.training_pairs(ctx.run_id, ctx.config.student))
    run_stage(ctx, "align")
    metrics = json.loads(ctx.store.artifact(ctx.run_id, ADAPTER)["metrics_json"])
    steps = [json.loads(row["metrics_json"]) for row in ctx.store.train_logs(ctx.run_id, ADAPTER)]
    assert len(steps) == metrics["steps"] == optimizer_steps(n_pairs, per_device_batch_size=2, batch_size=2, epochs=3)
    assert all(set(REWARD_KEYS) <= set(step) for step in steps)
    assert steps[0]["learning_rate"] == pytest.approx(AlignConfig.learning_rate)  # no step spent warming up
    assert metrics["moved"] is True and metrics["warning"] is None, [(s.get("learning_rate"), s["rewards/margins"]) for s in steps]
    assert metrics["margin_nats"] >= DPO_UNMOVED_NATS
    assert "teacher is unchanged" not in capsys.readouterr().err
    # What the adapter records of its data, seed and settings.
    assert metrics["dataset"]["name"] == f"pairs:{ctx.config.student}" and metrics["dataset"]["n_examples"] == n_pairs
    assert len(metrics["dataset"]["sha256"]) == 16 and metrics["seed"] == ctx.config.seed
    assert metrics["settings"] == {**AlignConfig(batch_size=2, max_length=256, epochs=3).__dict__}


@pytest.mark.slow
def test_a_teacher_that_did_not_move_is_warned_about_in_the_log_and_its_record(ctx, capsys):  # noqa: F811
    ctx.config.align = AlignConfig(batch_size=2, max_length=256, learning_rate=1e-9)
    scored_run(ctx)
    run_stage(ctx, "pairs")
    run_stage(ctx, "align")
    metrics = json.loads(ctx.store.artifact(ctx.run_id, ADAPTER)["metrics_json"])
    assert metrics["moved"] is False and "the teacher is unchanged" in metrics["warning"]
    assert f"warning: {metrics['warning']}" in capsys.readouterr().err


def test_the_examples_hash_changes_with_any_example_and_with_their_order():
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "c", "rejected": "d"}]
    assert examples_hash(rows) == examples_hash([dict(r) for r in rows])
    assert examples_hash(rows) != examples_hash(rows[::-1])
    assert examples_hash(rows) != examples_hash([rows[0], dict(rows[1], chosen="C")])

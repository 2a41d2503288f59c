"""Step 4: align the teacher with the student's preferences: DPO (TRL) on question and rationale
pairs with a LoRA adapter, the frozen base acting as the reference model.

Per (run, student): each student's pairs train its own adapter, in the student's folder of the run
(`RunContext.student_dir`). An adapter is reused only when it was trained on the same pairs (their hash)
with the same settings and seed; otherwise it is trained anew, never resumed from another's checkpoints.

Resumable: checkpoints every `align.save_steps`; the adapter is recorded only once fully saved, with
TRL's per-step rewards (accuracy, chosen, rejected, margin) and a warning when the final margin says the
teacher did not move (by the threshold `arte health` judges with, `config.run.DPO_UNMOVED_NATS`).
"""

from __future__ import annotations

import json
import shutil

from datasets import Dataset

from arte_core.config.run import DPO_UNMOVED_NATS
from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import QUESTION_PREFILL
from arte_core.training import (ProgressCallback, common_args, history_logs, last_checkpoint, provenance,
                                save_atomically)

ADAPTER = "teacher_adapter"
# TRL's DPO log keys, in the order the studio shows them.
REWARD_KEYS = ("rewards/accuracies", "rewards/chosen", "rewards/rejected", "rewards/margins")


def dpo_outcome(logs: list[dict], beta: float) -> dict:
    """The last logged step's rewards and whether the teacher moved: its reward margin in nats of
    log-ratio (margin / beta) at or above `DPO_UNMOVED_NATS`. A warning says so when it did not."""
    rewarded = [row for row in logs if "rewards/margins" in row]
    if not rewarded:
        return {"final_reward_margin": None, "final_reward_accuracy": None, "margin_nats": None, "moved": None,
                "warning": "the DPO log has no rewards, so whether the teacher moved is unknown."}
    last = rewarded[-1]
    margin, nats = float(last["rewards/margins"]), float(last["rewards/margins"]) / beta
    outcome = {"final_reward_margin": margin, "final_reward_accuracy": last.get("rewards/accuracies"),
               "margin_nats": nats, "moved": nats >= DPO_UNMOVED_NATS, "warning": None}
    if not outcome["moved"]:
        outcome["warning"] = (
            f"the teacher is unchanged: final DPO reward margin {margin:.4f} at step {last.get('step')} of "
            f"{len(logs)} is {nats:.3f} nats of log-ratio at beta {beta}, below {DPO_UNMOVED_NATS}. The ARTE "
            "data will be the original teacher's; raise `align.learning_rate` or `align.epochs` and rerun "
            "`arte align` under a new run name.")
        if (last.get("epoch") or 0) <= 1:  # TRL logs a batch's rewards before training on it
            outcome["warning"] += (" In the first epoch each step's rewards are on pairs not yet trained on; "
                                   "`align.epochs` of 2 or more shows whether the teacher fits them.")
    return outcome


def dpo_records(pairs: list[dict], render) -> list[dict]:
    """TRL's prompt/chosen/rejected rows: prompts rendered exactly as the teacher receives them,
    question pairs split after the `<input>` prefill as the teacher is prompted when it regenerates."""
    records = []
    for pair in pairs:
        prompt, chosen, rejected = render(pair["prompt"]), pair["chosen"], pair["rejected"]
        if pair["kind"] == "question":
            prompt += QUESTION_PREFILL
            chosen, rejected = chosen.removeprefix(QUESTION_PREFILL), rejected.removeprefix(QUESTION_PREFILL)
        records.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return records


def same_training(metrics_json: str | None, wanted: dict) -> bool:
    """Whether a stored model's record (`training.provenance`) names the same data, seed and settings."""
    metrics = json.loads(metrics_json or "{}")
    return all(metrics.get(key) == wanted[key] for key in ("dataset", "seed", "settings"))


def fresh_checkpoints(folder, wanted: dict) -> None:
    """Keep a checkpoint folder only if it was written by the same training (data, seed, settings): a
    killed run resumes, a changed one starts over instead of resuming another training's state."""
    marker = folder / "provenance.json"
    if folder.is_dir() and (not marker.is_file() or json.loads(marker.read_text()) != wanted):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(wanted))


def run_align(ctx: RunContext, student: str) -> str:
    """Train the teacher's DPO adapter on the student's (override-applied) pairs; returns the adapter folder.
    The student's stored adapter is kept when it was trained on these pairs with these settings."""
    pairs = ctx.store.training_pairs(ctx.run_id, student)
    if not pairs:
        raise ArteError(f"run '{ctx.run_id}' has no preference pairs for student '{student}' to train on (after "
                        "overrides); run `arte pairs` for that student, or un-exclude pairs in the studio.")
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from arte_core.models import load_causal_lm
    from arte_core.models.hf import chat_prompt

    cfg = ctx.config.align
    ctx.models.clear()
    model, tokenizer = load_causal_lm(ctx.config.teacher, trust_remote_code=ctx.config.trust_remote_code)
    render = lambda text: ctx.prompts.render(text, lambda user: chat_prompt(tokenizer, user))  # noqa: E731
    records = dpo_records(pairs, render)
    wanted = provenance(f"pairs:{student}", records, ctx.config.seed, cfg)
    existing = ctx.store.artifact(ctx.run_id, ADAPTER, student)
    if existing and same_training(existing["metrics_json"], wanted):
        return existing["path"]
    dataset = Dataset.from_list(records)
    out_dir = ctx.student_dir(student) / "align"
    fresh_checkpoints(out_dir / "checkpoints", wanted)
    args = DPOConfig(
        **common_args(out_dir / "checkpoints", n_examples=len(records), learning_rate=cfg.learning_rate,
                      epochs=cfg.epochs, warmup_ratio=cfg.warmup_ratio, per_device_batch_size=cfg.per_device_batch_size,
                      batch_size=cfg.batch_size, scheduler=cfg.lr_scheduler, optim=cfg.optim, save_steps=cfg.save_steps,
                      seed=ctx.config.seed),
        beta=cfg.beta, max_length=cfg.max_length,
    )
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    progress = ProgressCallback(ctx.reporter, "DPO (teacher)")
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora, callbacks=[progress])
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))
    adapter_dir = save_atomically(trainer.model.save_pretrained, out_dir / "adapter")
    logs = history_logs(trainer.state.log_history)
    pair_set = ctx.store.stage_info(ctx.run_id, "pairs", student) or {}  # which signal and style it learnt from
    outcome = dpo_outcome(logs, cfg.beta)
    if outcome["warning"]:
        ctx.reporter.log(f"warning: {outcome['warning']}")
    ctx.store.add_artifact(ctx.run_id, ADAPTER, "adapter", str(adapter_dir),
                           {"n_pairs": len(pairs), "pair_signal": pair_set.get("signal"),
                            "pair_style": pair_set.get("style"), "student": student, "steps": trainer.state.global_step,
                            "final_loss": logs[-1]["loss"] if logs else None, **outcome, **wanted}, logs,
                           student=student)
    return str(adapter_dir)


def load_aligned_teacher(ctx: RunContext, student: str):
    """The teacher with the student's DPO adapter merged in, as a Generator."""
    from peft import PeftModel

    from arte_core.models import load_causal_lm
    from arte_core.models.hf import HFGenerator

    artifact = ctx.store.artifact(ctx.run_id, ADAPTER, student)
    if not artifact:
        raise ArteError(f"run '{ctx.run_id}' has no teacher aligned to student '{student}' yet; run "
                        f"`arte align --student {student}` first.")
    base, tokenizer = load_causal_lm(ctx.config.teacher, trust_remote_code=ctx.config.trust_remote_code)
    merged = PeftModel.from_pretrained(base, artifact["path"]).merge_and_unload()
    return HFGenerator(merged, tokenizer, f"{ctx.config.teacher}+dpo:{ctx.run_id}:{student}")

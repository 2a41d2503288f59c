"""Step 4: align the teacher with the student's preferences: DPO (TRL) on question and rationale
pairs with a LoRA adapter, the frozen base acting as the reference model.

Resumable: checkpoints every `align.save_steps`; the adapter is recorded only once fully saved.
"""

from __future__ import annotations

from datasets import Dataset

from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import QUESTION_PREFILL
from arte_core.training import ProgressCallback, common_args, history_logs, last_checkpoint, save_atomically

ADAPTER = "teacher_adapter"


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


def run_align(ctx: RunContext, student: str) -> str:
    """Train the teacher's DPO adapter on the student's (override-applied) pairs; returns the adapter folder."""
    existing = ctx.store.artifact(ctx.run_id, ADAPTER)
    if existing:
        return existing["path"]
    pairs = ctx.store.training_pairs(ctx.run_id, student)
    if not pairs:
        raise ArteError(f"run '{ctx.run_id}' has no preference pairs to train on (after overrides); "
                        "run `arte pairs`, or un-exclude pairs in the studio.")
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from arte_core.models import load_causal_lm
    from arte_core.models.hf import chat_prompt

    cfg = ctx.config.align
    ctx.models.clear()
    model, tokenizer = load_causal_lm(ctx.config.teacher, trust_remote_code=ctx.config.trust_remote_code)
    render = lambda text: ctx.prompts.render(text, lambda user: chat_prompt(tokenizer, user))  # noqa: E731
    dataset = Dataset.from_list(dpo_records(pairs, render))
    out_dir = ctx.run_dir / "align"
    args = DPOConfig(
        **common_args(out_dir / "checkpoints", learning_rate=cfg.learning_rate, epochs=cfg.epochs,
                      warmup_ratio=cfg.warmup_ratio, per_device_batch_size=cfg.per_device_batch_size,
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
    ctx.store.add_artifact(ctx.run_id, ADAPTER, "adapter", str(adapter_dir),
                           {"n_pairs": len(pairs), "pair_signal": pair_set.get("signal"),
                            "pair_style": pair_set.get("style"), "steps": trainer.state.global_step,
                            "final_loss": logs[-1]["loss"] if logs else None}, logs)
    return str(adapter_dir)


def load_aligned_teacher(ctx: RunContext):
    """The teacher with its DPO adapter merged in, as a Generator."""
    from peft import PeftModel

    from arte_core.models import load_causal_lm
    from arte_core.models.hf import HFGenerator

    artifact = ctx.store.artifact(ctx.run_id, ADAPTER)
    if not artifact:
        raise ArteError(f"run '{ctx.run_id}' has no aligned teacher yet; run `arte align` first.")
    base, tokenizer = load_causal_lm(ctx.config.teacher, trust_remote_code=ctx.config.trust_remote_code)
    merged = PeftModel.from_pretrained(base, artifact["path"]).merge_and_unload()
    return HFGenerator(merged, tokenizer, f"{ctx.config.teacher}+dpo:{ctx.run_id}")

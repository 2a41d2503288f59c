"""Step 5b: fine-tune the student on the original-teacher data and on the ARTE data.

Two SFT datasets of equal size are built per run: 'original' (the best-scored draft of every
draft question, as the paper's original-teacher baseline) and 'arte' (questions and plain
step-by-step rationales the aligned teacher regenerated). The student is fine-tuned on each.
"""

from __future__ import annotations

from datasets import Dataset

from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import sft_example
from arte_core.training import (ProgressCallback, common_args, history_logs, last_checkpoint, provenance,
                                save_atomically)

DATASETS = ("original", "arte")


def original_examples(ctx: RunContext, student: str) -> list[dict]:
    """The best-scored rationale of every draft question (ties: the first technique by name)."""
    best: dict[str, dict] = {}
    for row in ctx.store.draft_scores(ctx.run_id, student):
        current = best.get(row["question_id"])
        if current is None or row["accuracy"] > current["accuracy"]:
            best[row["question_id"]] = row
    return [_example(row) for _, row in sorted(best.items(), key=lambda kv: kv[1]["question_idx"])]


def arte_examples(ctx: RunContext) -> list[dict]:
    return [_example(row) for row in ctx.store.rationales(ctx.run_id, "arte")]


def _example(row: dict) -> dict:
    return dict(question_id=row["question_id"], rationale_id=row["rationale_id"], input=row["question"],
                rationale=row["text"], answer=row["answer"] or row["target"])


def run_distill(ctx: RunContext, student: str) -> dict[str, str]:
    """Fine-tune the student on the original-teacher data and on the ARTE data; returns model folders."""
    datasets = {"original": original_examples(ctx, student), "arte": arte_examples(ctx)}
    n = min(len(rows) for rows in datasets.values())
    paths = {}
    for name, rows in datasets.items():
        artifact = ctx.store.artifact(ctx.run_id, f"student_{name}")
        if artifact:
            paths[name] = artifact["path"]
            continue
        ctx.store.save_sft_examples(ctx.run_id, name, rows[:n])
        paths[name] = _fine_tune(ctx, name, ctx.store.sft_examples(ctx.run_id, name))
    return paths


def _stored_example(row: dict) -> dict:
    """The fields of an SFT example that define it (not its row's run id or position)."""
    return {key: row[key] for key in ("question_id", "rationale_id", "input", "rationale", "answer")}


def _fine_tune(ctx: RunContext, name: str, rows: list[dict]) -> str:
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from arte_core.models import load_causal_lm

    cfg = ctx.config.distill
    ctx.models.clear()
    model, tokenizer = load_causal_lm(ctx.config.student, trust_remote_code=ctx.config.trust_remote_code)
    dataset = Dataset.from_list([sft_example(ctx.task, r["input"], r["rationale"], r["answer"]) for r in rows])
    out_dir = ctx.run_dir / "distill" / name
    args = SFTConfig(
        **common_args(out_dir / "checkpoints", n_examples=len(rows), learning_rate=cfg.learning_rate,
                      epochs=cfg.epochs, warmup_ratio=cfg.warmup_ratio, per_device_batch_size=cfg.per_device_batch_size,
                      batch_size=cfg.batch_size, scheduler=cfg.lr_scheduler, optim=cfg.optim,
                      save_steps=cfg.save_steps, seed=ctx.config.seed),
        max_length=cfg.max_length, completion_only_loss=True,
    )
    peft_config = None
    if cfg.use_lora:
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
                                 lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    progress = ProgressCallback(ctx.reporter, f"SFT student ({name})")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[progress])
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))

    def save(folder):
        trainer.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    kind = "adapter" if cfg.use_lora else "model"
    folder = save_atomically(save, out_dir / kind)
    logs = history_logs(trainer.state.log_history)
    ctx.store.add_artifact(ctx.run_id, f"student_{name}", kind, str(folder),
                           {"n_examples": len(rows), "steps": trainer.state.global_step,
                            "final_loss": logs[-1]["loss"] if logs else None,
                            **provenance(name, [_stored_example(r) for r in rows], ctx.config.seed, cfg)}, logs)
    return str(folder)

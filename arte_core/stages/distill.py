"""Step 5b: fine-tune one student on each arm of `distill.arms`, like for like.

The arms (the variants evaluate.py compares):
- 'original': what the unaligned base teacher regenerated (origin 'base'), the paper's original-teacher
  baseline, written with exactly the prompts, decoding and sizes of the ARTE arm (regenerate.py);
- 'arte': what the teacher aligned to this student regenerated (origin 'arte');
- 'best_drafts' (optional): the best-scored draft of each draft question, a baseline the student itself
  selected from the drafts, not the paper's;
- 'from:OTHER' (one per student of `distill.transfer_from`): what the teacher aligned to OTHER regenerated
  (OTHER's 'arte' arm), the paper's transfer setting (Table 5): does a teacher tailored to one student
  teach another as well?

Every trained arm gets the same number of examples (the smallest arm's) and the same SFT settings and
seed. Each model records its data's hash, the seed and the settings (`training.provenance`); a stored
model is reused only when all three still match, so changing the data or a setting trains it anew.
Models live in the student's folder of the run, so two students never share one.
"""

from __future__ import annotations

from datasets import Dataset

from arte_core.context import RunContext, student_folder
from arte_core.errors import ArteError
from arte_core.prompts import sft_example
from arte_core.stages.align import fresh_checkpoints, same_training
from arte_core.training import ProgressCallback, common_args, history_logs, last_checkpoint, provenance, save_atomically

# Arm -> the origin of the regenerated rationales it trains on (best_drafts: the scored drafts).
ARM_ORIGINS = {"original": "base", "arte": "arte"}
TRANSFER_PREFIX = "from:"


def transfer_arm(other: str) -> str:
    """The arm trained on the data of the teacher aligned to `other`."""
    return f"{TRANSFER_PREFIX}{other}"


def transfer_source(arm: str) -> str | None:
    """The student whose aligned teacher wrote a transfer arm's data (None for the other arms)."""
    return arm[len(TRANSFER_PREFIX):] if arm.startswith(TRANSFER_PREFIX) else None


def trained_arms(ctx: RunContext, student: str) -> list[str]:
    """distill.arms, then one transfer arm per student of distill.transfer_from."""
    others = list(ctx.config.distill.transfer_from)
    if student in others:
        raise ArteError(f"distill.transfer_from names the student '{student}' itself; its own aligned teacher's "
                        "data is the 'arte' arm. List only the run's other students.")
    return list(ctx.config.distill.arms) + [transfer_arm(o) for o in others]


def arm_folder(arm: str) -> str:
    """A folder name for the arm's model: a transfer arm's student may be a path or a Hub id, so it is named
    as students' folders are (`context.student_folder`)."""
    source = transfer_source(arm)
    if source is None:
        return arm
    return "from-" + student_folder(source)


def best_draft_examples(ctx: RunContext, student: str) -> list[dict]:
    """The best-scored rationale of every draft question for this student (ties: the first technique by name)."""
    best: dict[str, dict] = {}
    for row in ctx.store.draft_scores(ctx.run_id, student):
        current = best.get(row["question_id"])
        if current is None or row["accuracy"] > current["accuracy"]:
            best[row["question_id"]] = row
    return [_example(row) for _, row in sorted(best.items(), key=lambda kv: kv[1]["question_idx"])]


def arm_examples(ctx: RunContext, arm: str, student: str) -> list[dict]:
    """The SFT examples an arm offers, before the arms are cut to one size."""
    if arm == "best_drafts":
        return best_draft_examples(ctx, student)
    source = transfer_source(arm)
    if source is not None:
        return [_example(row) for row in ctx.store.rationales(ctx.run_id, "arte", source)]
    return [_example(row) for row in ctx.store.rationales(ctx.run_id, ARM_ORIGINS[arm], student)]


def _example(row: dict) -> dict:
    return dict(question_id=row["question_id"], rationale_id=row["rationale_id"], input=row["question"],
                rationale=row["text"], answer=row["answer"] or row["target"])


def _stored_example(row: dict) -> dict:
    """The fields of an SFT example that define it (not its row's run id, student or position)."""
    return {key: row[key] for key in ("question_id", "rationale_id", "input", "rationale", "answer")}


def training_record(ctx: RunContext, arm: str, rows: list[dict]) -> dict:
    """What the arm's model records of its training (data hash, seed, settings). `distill.arms` is left
    out of the settings: adding an arm does not change how the others train."""
    record = provenance(arm, [_stored_example(r) for r in rows], ctx.config.seed, ctx.config.distill)
    record["settings"].pop("arms", None)
    record["settings"].pop("transfer_from", None)
    return record


def run_distill(ctx: RunContext, student: str) -> dict[str, str]:
    """Fine-tune the student on every arm of distill.arms, each cut to the smallest arm's size; returns
    the model folder of each arm."""
    arms = trained_arms(ctx, student)
    datasets = {arm: arm_examples(ctx, arm, student) for arm in arms}
    missing_sources = [transfer_source(arm) for arm, rows in datasets.items() if not rows and transfer_source(arm)]
    if missing_sources:
        raise ArteError(f"run '{ctx.run_id}' has no data from the teacher aligned to "
                        f"{', '.join(repr(s) for s in missing_sources)} for the transfer arm(s) of student "
                        f"'{student}'; run `arte regenerate --student STUDENT` for each of them first "
                        "(or drop them from distill.transfer_from).")
    empty = [arm for arm, rows in datasets.items() if not rows]
    if empty:
        raise ArteError(f"run '{ctx.run_id}' has no examples for the arm(s) {', '.join(empty)} of student "
                        f"'{student}'; run `arte regenerate --student {student}` (and `arte score` for "
                        "best_drafts) first.")
    n = min(len(rows) for rows in datasets.values())
    paths = {}
    for arm, rows in datasets.items():
        rows = rows[:n]
        wanted = training_record(ctx, arm, rows)
        artifact = ctx.store.artifact(ctx.run_id, f"student_{arm}", student)
        if artifact and same_training(artifact["metrics_json"], wanted):
            paths[arm] = artifact["path"]
            continue
        ctx.store.save_sft_examples(ctx.run_id, arm, rows, student)
        paths[arm] = _fine_tune(ctx, arm, student, ctx.store.sft_examples(ctx.run_id, arm, student), wanted)
    return paths


def _fine_tune(ctx: RunContext, arm: str, student: str, rows: list[dict], wanted: dict) -> str:
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from arte_core.models import load_causal_lm

    cfg = ctx.config.distill
    ctx.models.clear()
    model, tokenizer = load_causal_lm(student, trust_remote_code=ctx.config.trust_remote_code)
    dataset = Dataset.from_list([sft_example(ctx.task, r["input"], r["rationale"], r["answer"]) for r in rows])
    out_dir = ctx.student_dir(student) / "distill" / arm_folder(arm)
    fresh_checkpoints(out_dir / "checkpoints", wanted)
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
    progress = ProgressCallback(ctx.reporter, f"SFT student ({arm})")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[progress])
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir / "checkpoints"))

    def save(folder):
        trainer.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    kind = "adapter" if cfg.use_lora else "model"
    folder = save_atomically(save, out_dir / kind)
    logs = history_logs(trainer.state.log_history)
    ctx.store.add_artifact(ctx.run_id, f"student_{arm}", kind, str(folder),
                           {"n_examples": len(rows), "steps": trainer.state.global_step,
                            "final_loss": logs[-1]["loss"] if logs else None, **wanted}, logs, student=student)
    return str(folder)

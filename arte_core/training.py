"""What the DPO and SFT stages share: trainer arguments for CPU or GPU, checkpoint resume,
progress and loss events, atomic saving of adapters and models, and what each trained model records
of its data, seed and settings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from pathlib import Path

import torch
from transformers import TrainerCallback

from arte_core.progress import Reporter


def optimizer_steps(n_examples: int, *, per_device_batch_size: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps of a run on one device, as the trainer counts them (a short last batch is a step)."""
    per_device_batch_size = min(per_device_batch_size, batch_size)
    accumulation = max(1, batch_size // per_device_batch_size)
    per_epoch = max(1, math.ceil(math.ceil(n_examples / per_device_batch_size) / accumulation))
    return max(1, math.ceil(per_epoch * epochs))


def warmup_steps(warmup_ratio: float, total_steps: int) -> int:
    """Warm-up steps, rounded down: transformers rounds a ratio up, so a 3-step run with any warm-up
    spent its first step at learning rate 0 (the demo's DPO did). Rounded down, a run shorter than
    1 / ratio steps has none, and at least (1 − ratio) of any run's steps follow the schedule after it."""
    return math.floor(warmup_ratio * total_steps)


def common_args(output_dir: Path, *, n_examples: int, learning_rate: float, epochs: float, warmup_ratio: float,
                per_device_batch_size: int, batch_size: int, scheduler: str, optim: str, save_steps: int,
                seed: int) -> dict:
    """Trainer arguments shared by DPOConfig and SFTConfig (CPU-safe settings spelled out). A
    per-device batch larger than the batch is cut to it, so a step never trains on more than `batch_size`."""
    on_gpu = torch.cuda.is_available()
    total = optimizer_steps(n_examples, per_device_batch_size=per_device_batch_size, batch_size=batch_size,
                            epochs=epochs)
    per_device_batch_size = min(per_device_batch_size, batch_size)
    return dict(
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        warmup_steps=warmup_steps(warmup_ratio, total),  # an int: whole steps, not transformers' rounded-up ratio
        lr_scheduler_type=scheduler,
        optim=optim,
        per_device_train_batch_size=per_device_batch_size,
        gradient_accumulation_steps=max(1, batch_size // per_device_batch_size),
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        logging_steps=1,
        report_to=[],
        seed=seed,
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete `checkpoint-N` folder, for resuming a killed run."""
    if not output_dir.is_dir():
        return None
    done = [p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


class ProgressCallback(TrainerCallback):
    """Forwards steps and logged losses to the run's progress reporter (the stored losses come from the
    trainer's log history: `history_logs`)."""

    def __init__(self, reporter: Reporter, stage: str):
        self.reporter, self.stage = reporter, stage
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = self.reporter.bar(self.stage, state.max_steps)
        self.bar.update(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.reporter.emit(stage=self.stage, step=state.global_step, loss=logs["loss"])

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar:
            self.bar.close()


def history_logs(log_history: list[dict]) -> list[dict]:
    """Every logged step's numbers (loss, learning rate and, for DPO, TRL's `rewards/*`) from a trainer's
    log history (covers steps run before a resume too)."""
    rows = {}
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            rows[entry["step"]] = {k: v for k, v in entry.items() if isinstance(v, (int, float))}
    return [rows[s] for s in sorted(rows)]


def save_atomically(save, final_dir: Path) -> Path:
    """Write with `save(tmp_dir)` then rename, so a kill never leaves a half-written folder behind."""
    final_dir = Path(final_dir)
    tmp = final_dir.with_name(final_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    shutil.rmtree(final_dir, ignore_errors=True)
    tmp.rename(final_dir)
    return final_dir


def examples_hash(rows: list[dict]) -> str:
    """A short SHA-256 of training examples in order (their text as JSON): two models whose records show
    the same hash trained on the same data."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def provenance(dataset: str, rows: list[dict], seed: int, settings) -> dict:
    """What a trained model records of what it was trained on: the dataset's name, size and hash, the
    seed and the config section (a dataclass) the trainer ran with."""
    return {"dataset": {"name": dataset, "n_examples": len(rows), "sha256": examples_hash(rows)},
            "seed": seed, "settings": dataclasses.asdict(settings)}

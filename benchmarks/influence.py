"""Seconds per local-data-influence probe: state restored in place in memory vs reloaded from disk.

Both methods start from the same warmed-up student state and probe the same drafts (built-in
boolean_expressions questions with a short rationale) against the same reference items. The disk
baseline does what Montessori-Instruct's code does for every probe: load the weights
(`from_pretrained`; in LoRA mode the base model plus the saved adapter) and the optimizer state
(`torch.load`) again, take the step, evaluate the reference set. Both methods must give the same
influence values. The two run interleaved, draft by draft, and seconds per probe are medians, so
a shared machine's load changes hit both alike. Last line:
`probe_speedup: X` = disk median / in-memory median.

    .venv/bin/python benchmarks/influence.py [--model smollm2-135m-instruct] [--mode lora|full]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from arte_core.config import INFLUENCE_DEVICES
from arte_core.models import load_causal_lm, resolve_model_path
from arte_core.stages.influence import (
    InfluenceConfig,
    build_optimizer,
    build_probe,
    encode,
    probe_device,
    reference_example,
    reference_loss,
    trainable_parameters,
    train_step,
)
from arte_core.prompts import sft_example
from arte_core.tasks import load_task


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="student: registry name or model folder")
    parser.add_argument("--mode", choices=("lora", "full"), default="lora")
    parser.add_argument("--n-drafts", type=int, default=8)
    parser.add_argument("--n-reference", type=int, default=16)
    parser.add_argument("--warmup-steps", type=int, default=2, help="steps on the first drafts before the snapshot, "
                        "so the optimizer state to restore is not empty")
    parser.add_argument("--learning-rate", type=float, default=None, help="default 1e-4 (lora) / 1e-5 (full)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--device", choices=INFLUENCE_DEVICES, default="auto",
                        help="where both methods run ('auto': a CUDA GPU when torch sees one)")
    return parser.parse_args()


def workload(n_drafts: int, n_reference: int) -> tuple[list[dict], list[dict]]:
    """(drafts, reference) as prompt/completion examples from the built-in boolean_expressions task."""
    task = load_task("boolean_expressions", seed=0)
    pref, test = task.split(n_reference, n_drafts, seed=0)
    reference = [reference_example(task, {"input": e.input, "target": e.target}) for e in pref]
    rationale = "Evaluate the brackets first, then every not, then and, then or. The expression is {}."
    drafts = [sft_example(task, e.input, rationale.format(e.target), e.target) for e in test]
    return drafts, reference


def clock() -> float:
    """Seconds, after the GPU (if any) has finished what was queued: its work is asynchronous."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def memory_probe(probe, example) -> tuple[float, dict]:
    """The body of `InfluenceProbe.probe`, timed phase by phase."""
    t0 = clock()
    train_step(probe.model, probe.optimizer, example, probe.pad_id)
    t1 = clock()
    after = probe.reference_loss()
    t2 = clock()
    probe.restore()
    t3 = clock()
    return after - probe.loss_before, dict(state=t3 - t2, step=t1 - t0, reference=t2 - t1, total=t3 - t0)


def load_state(args, cfg: InfluenceConfig, save_dir: Path):
    """The saved student and optimizer, read back from disk (what the original code does per probe)."""
    if cfg.mode == "lora":
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(resolve_model_path(args.model), dtype=torch.float32)
        model = PeftModel.from_pretrained(base, save_dir / "student", is_trainable=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(save_dir / "student", dtype=torch.float32)
    device = probe_device(cfg)
    model = model.to(device).eval()
    optimizer = build_optimizer(trainable_parameters(model), cfg)
    optimizer.load_state_dict(torch.load(save_dir / "optimizer.pt", map_location=device))
    return model, optimizer


def disk_probe(args, cfg: InfluenceConfig, save_dir: Path, batches, loss_before: float, example,
               pad_id: int) -> tuple[float, dict]:
    """One probe the original way: reload weights and optimizer state, step, evaluate."""
    t0 = clock()
    model, optimizer = load_state(args, cfg, save_dir)
    t1 = clock()
    train_step(model, optimizer, example, pad_id)
    t2 = clock()
    after = reference_loss(model, batches)
    t3 = clock()
    del model, optimizer
    gc.collect()
    return after - loss_before, dict(state=t1 - t0, step=t2 - t1, reference=t3 - t2, total=t3 - t0)


def compare(args, cfg: InfluenceConfig, drafts, reference, save_dir: Path):
    """Both methods from the same saved state, interleaved draft by draft so load changes on a
    shared machine hit both alike. Returns (in-memory, disk) lists of (influence, timings)."""
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(args.model)
    probe = build_probe(model, tokenizer, cfg, reference, drafts[:args.warmup_steps])
    probe.model.save_pretrained(save_dir / "student")  # LoRA: the adapter only; full: all weights
    torch.save(probe.optimizer.state_dict(), save_dir / "optimizer.pt")
    memory, disk = [], []
    for draft in drafts:
        example = encode(tokenizer, draft["prompt"], draft["completion"], cfg.max_length)
        memory.append(memory_probe(probe, example))
        # loss_before is computed once for both methods (the baseline is not charged for it)
        disk.append(disk_probe(args, cfg, save_dir, probe.reference, probe.loss_before, example, probe.pad_id))
    return memory, disk


def median(timings: list[dict], key: str) -> float:
    return statistics.median(t[key] for t in timings)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lr = args.learning_rate or (1e-4 if args.mode == "lora" else 1e-5)
    cfg = InfluenceConfig(mode=args.mode, learning_rate=lr, warmup_steps=args.warmup_steps, device=args.device)
    drafts, reference = workload(args.n_drafts, args.n_reference)
    with tempfile.TemporaryDirectory() as tmp:
        memory_runs, disk_runs = compare(args, cfg, drafts, reference, Path(tmp))
    memory_influence, memory = zip(*memory_runs)
    disk_influence, disk = zip(*disk_runs)
    diff = max(abs(a - b) for a, b in zip(memory_influence, disk_influence))
    print(f"model {args.model}, mode {args.mode}, lr {lr}, {len(drafts)} drafts, {len(reference)} reference items, "
          f"warm-up {args.warmup_steps} steps, device {probe_device(cfg)}, torch threads {torch.get_num_threads()}")
    print("\n| method | restore/reload s | step s | reference s | s per probe (median) |")
    print("| --- | --- | --- | --- | --- |")
    for name, timings in (("in-memory restore (ours)", memory), ("reload from disk (original)", disk)):
        print(f"| {name} | {median(timings, 'state'):.3f} | {median(timings, 'step'):.3f} | "
              f"{median(timings, 'reference'):.3f} | {median(timings, 'total'):.3f} |")
    print(f"\ninfluence per draft (in memory): {', '.join(f'{x:+.5f}' for x in memory_influence)}")
    print(f"max |influence difference| between the methods: {diff:.2e}")
    if diff > 1e-5:
        raise SystemExit(f"the two methods disagree (max difference {diff:.2e})")
    print(f"probe_speedup: {median(disk, 'total') / median(memory, 'total'):.2f}")


if __name__ == "__main__":
    main()

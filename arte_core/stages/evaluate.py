"""Evaluation of one student: zero-shot and k-shot accuracy on the test split for the untrained student
and for the student fine-tuned on each trained arm (distill.py: 'original', 'arte', 'best_drafts' and the
transfer arms 'from:OTHER').

Answers are read as in scoring (arte_core/tasks/answers.py): each item keeps how it was read and
whether it hit the token cap. Every cell belongs to (run, student), so two students' evaluations never
mix. Resumable: one (variant, shots) cell commits with its items; stored cells are not recomputed unless
they are older than the model they evaluate or the evaluation settings changed.
"""

from __future__ import annotations

from arte_core.context import RunContext
from arte_core.models import SamplingParams
from arte_core.prompts import STUDENT_STOP, few_shot_prompt
from arte_core.stages.distill import TRANSFER_PREFIX
from arte_core.stages.score import student_max_new_tokens
from arte_core.store import utcnow
from arte_core.tasks.answers import read_answer

# The untrained student, then the arms in the order the studio shows them.
VARIANTS = ("untrained", "original", "arte", "best_drafts")


def trained_variants(ctx: RunContext, student: str) -> list[str]:
    """Every fine-tuned variant this student has a model of in this run: the arms in VARIANTS order, then
    the transfer arms ('from:OTHER') by name."""
    kinds = ctx.store.artifact_kinds(ctx.run_id, student)
    transfers = sorted(k[len("student_"):] for k in kinds if k.startswith("student_" + TRANSFER_PREFIX))
    return [v for v in VARIANTS[1:] if f"student_{v}" in kinds] + transfers


def available_variants(ctx: RunContext, student: str) -> list[str]:
    """The untrained student, plus each fine-tuned student of this student that exists for this run."""
    return ["untrained"] + trained_variants(ctx, student)


def variant_generator(ctx: RunContext, variant: str, student: str):
    """A generator for one student variant; adapters are merged into the base in memory."""
    cfg = ctx.config.eval
    if variant == "untrained":
        return ctx.models.generator(student, cfg.dtype, cfg.engine)
    artifact = ctx.store.artifact(ctx.run_id, f"student_{variant}", student)
    if artifact["kind"] == "model":
        return ctx.models.generator(artifact["path"], cfg.dtype, cfg.engine)
    from peft import PeftModel

    from arte_core.models import load_causal_lm, wrap_model

    base, tokenizer = load_causal_lm(student, trust_remote_code=ctx.config.trust_remote_code)
    merged = PeftModel.from_pretrained(base, artifact["path"]).merge_and_unload()
    return wrap_model(merged, tokenizer, f"{student}+{variant}", cfg.engine)


def evaluate_variant(ctx: RunContext, variant: str, shots: int, generator, student: str | None = None) -> dict:
    student = student or ctx.config.student
    cfg, task = ctx.config.eval, ctx.task
    items = ctx.test_items
    exemplars = task.exemplars[:shots]
    prompts = [few_shot_prompt(task, item["input"], exemplars) for item in items]
    if cfg.icl_format == "chat":
        prompts = [generator.chat_prompt(p) for p in prompts]
    params = SamplingParams(max_new_tokens=student_max_new_tokens(cfg.max_new_tokens, task, generator),
                            temperature=0.0, stop=STUDENT_STOP)
    with ctx.reporter.bar(f"eval {variant} {shots}-shot", len(items)) as bar:
        outputs = generator.generate(prompts, params, batch_size=cfg.batch_size, progress=bar.update)
    rows = []
    for item, out in zip(items, outputs):
        reading = read_answer(task.answer_format, out.text, task.labels, finished=out.stopped)
        rows.append(dict(run_id=ctx.run_id, student=student, variant=variant, shots=shots,
                         item_index=item["item_index"], output=out.text, answer=reading.answer,
                         correct=task.is_correct(reading.answer, item["target"]),
                         parse_mode=reading.parse_mode, truncated=reading.truncated))
    n_correct = sum(r["correct"] for r in rows)
    summary = dict(run_id=ctx.run_id, student=student, variant=variant, shots=shots, accuracy=n_correct / len(rows),
                   n_items=len(rows), n_correct=n_correct, n_unparsed=sum(r["answer"] is None for r in rows),
                   model=generator.name, created_at=utcnow(), n_truncated=sum(r["truncated"] for r in rows))
    ctx.store.add_evaluation(summary, rows)
    return summary


def discard_stale_cells(ctx: RunContext, student: str) -> None:
    """Drop the student's cells that no longer describe its models: all of them when the evaluation ran
    before with other settings than now (other shots alone only add cells), and a variant's cells older
    than its model (distill trained it anew)."""
    info = ctx.store.stage_info(ctx.run_id, "evaluate", student)
    wanted = {key: value for key, value in ctx.config.to_dict()["eval"].items() if key != "shots"}
    if info is not None and {k: v for k, v in (info.get("eval") or {}).items() if k != "shots"} != wanted:
        ctx.store.discard_evaluation(ctx.run_id, student)
    for variant in trained_variants(ctx, student):
        artifact = ctx.store.artifact(ctx.run_id, f"student_{variant}", student)
        cells = [ctx.store.evaluation(ctx.run_id, variant, k, student) for k in ctx.config.eval.shots]
        if artifact and any(c and c["created_at"] < artifact["created_at"] for c in cells):
            ctx.store.discard_evaluation(ctx.run_id, student, variant)


def run_evaluate(ctx: RunContext, student: str) -> list[dict]:
    """Fill every missing (variant, shots) cell of the student; returns the student's evaluation table."""
    discard_stale_cells(ctx, student)
    for variant in available_variants(ctx, student):
        missing = [k for k in ctx.config.eval.shots if not ctx.store.evaluation(ctx.run_id, variant, k, student)]
        if not missing:
            continue
        generator = variant_generator(ctx, variant, student)
        for shots in missing:
            evaluate_variant(ctx, variant, shots, generator, student)
        if variant != "untrained":
            del generator
            ctx.models.clear()
    return ctx.store.evaluations(ctx.run_id, student)

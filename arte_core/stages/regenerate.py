"""Step 5a: the aligned teacher regenerates tailored data: questions, then one plain step-by-step
rationale each (origin 'arte'), as many as the original-teacher data has."""

from __future__ import annotations

from arte_core.context import RunContext
from arte_core.stages.align import load_aligned_teacher
from arte_core.stages.distill import original_examples
from arte_core.stages.elicit import generate_questions, regenerate_rationales


def n_regenerated(ctx: RunContext, student: str) -> int:
    """As many regenerated examples as the original-teacher data has (or regenerate.n_examples)."""
    return ctx.config.regenerate.n_examples or len(original_examples(ctx, student))


def run_regenerate(ctx: RunContext, student: str) -> dict:
    """Aligned teacher: questions at regenerate.question_temperature, then one plain rationale each."""
    n_wanted = n_regenerated(ctx, student)  # the registry checked that the student has scored drafts
    ctx.models.clear()
    teacher = load_aligned_teacher(ctx)
    generate_questions(ctx, teacher, "arte", n_wanted, ctx.config.regenerate.question_temperature)
    regenerate_rationales(ctx, teacher)
    return {"n_examples": len(ctx.store.rationales(ctx.run_id, "arte"))}

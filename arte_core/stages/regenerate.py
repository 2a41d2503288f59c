"""Step 5a: regenerate the training data of one student in two like-for-like arms.

- 'arte': the aligned teacher (the base teacher with this student's DPO adapter merged in);
- 'base': the unaligned base teacher, the paper's original-teacher baseline.

Both arms are written by the same functions with the same prompts, decoding (question and rationale
temperatures, token limits, seeds) and sizes, so the only difference between them is the adapter. Their
rows carry the student; another student's arms are never read or replaced.
"""

from __future__ import annotations

from arte_core.context import RunContext
from arte_core.stages.align import ADAPTER, load_aligned_teacher
from arte_core.stages.distill import best_draft_examples
from arte_core.stages.elicit import generate_questions, regenerate_rationales

# The regenerated arms: origin -> which teacher writes it.
ARMS = ("base", "arte")


def n_regenerated(ctx: RunContext, student: str) -> int:
    """As many examples per arm as there are draft questions the student scored (or regenerate.n_examples)."""
    return ctx.config.regenerate.n_examples or len(best_draft_examples(ctx, student))


def stale_arms(ctx: RunContext, student: str) -> bool:
    """Whether the stored arms must be written anew: the stage ran before with other settings (the
    pipeline calls a stage that is done only then), or the 'arte' arm is older than the student's adapter."""
    if ctx.store.stage_info(ctx.run_id, "regenerate", student) is not None:
        return True
    adapter = ctx.store.artifact(ctx.run_id, ADAPTER, student)
    written = [q["created_at"] for q in ctx.store.questions(ctx.run_id, "arte", student)]
    return bool(adapter and written and min(written) < adapter["created_at"])


def write_arm(ctx: RunContext, teacher, origin: str, student: str, n_wanted: int) -> int:
    """One arm: n_wanted questions at regenerate.question_temperature, then one plain rationale each."""
    cfg = ctx.config.regenerate
    generate_questions(ctx, teacher, origin, n_wanted, cfg.question_temperature, student)
    regenerate_rationales(ctx, teacher, origin, student)
    return len(ctx.store.rationales(ctx.run_id, origin, student))


def run_regenerate(ctx: RunContext, student: str) -> dict:
    """The unaligned ('base') and the aligned ('arte') teacher write the student's two arms alike."""
    n_wanted = n_regenerated(ctx, student)  # the registry checked that the student has scored drafts
    if stale_arms(ctx, student):
        for origin in ARMS:
            ctx.store.discard_arm(ctx.run_id, origin, student)
    counts = {"base": write_arm(ctx, ctx.models.teacher(), "base", student, n_wanted)}
    ctx.models.clear()
    counts["arte"] = write_arm(ctx, load_aligned_teacher(ctx, student), "arte", student, n_wanted)
    ctx.models.clear()
    return {"n_wanted": n_wanted, "n_examples": counts}

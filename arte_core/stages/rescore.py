"""Step 2 again, when the user asks: score anew the drafts a student was scored on by an older ARTE
Studio (answers read before parse modes, truncation and task budgets existed). Upgrading a store never
recomputes its scores by itself; `arte rescore` does, resumably (a kill keeps what was rescored)."""

from __future__ import annotations

from arte_core.context import RunContext
from arte_core.stages.score import score_drafts


def run_rescore(ctx: RunContext, student: str) -> dict:
    n_dropped = ctx.store.drop_scores_read_before_parse_modes(ctx.run_id, student)
    return {"n_dropped": n_dropped, "n_scored_now": score_drafts(ctx, student)}

"""Step 3: build preference pairs from draft scores.

Question pairs: chosen from the top quantile of question scores, rejected from the bottom one.
Rationale pairs: best vs worst rationale of one question, under the plain step-by-step prompt.
The pure functions take scores and return pairs; `run_pairs` reads and writes the store.

Reads: questions, rationales, icl_scores.  Writes: pairs.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from statistics import mean

from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import format_question_block
from arte_core.store import utcnow

READS = ("questions", "rationales", "icl_scores")
WRITES = ("pairs",)


@dataclass(frozen=True)
class ScoredPair:
    chosen: str  # id of the preferred item
    rejected: str
    chosen_score: float
    rejected_score: float

    @property
    def margin(self) -> float:
        return self.chosen_score - self.rejected_score


def question_scores(rationale_scores: list[dict]) -> dict[str, float]:
    """A question's score is the mean of its rationales' scores."""
    by_question: dict[str, list[float]] = {}
    for row in rationale_scores:
        by_question.setdefault(row["question_id"], []).append(row["score"])
    return {qid: mean(scores) for qid, scores in by_question.items()}


def question_pairs(scores: dict[str, float], quantile: float, n_pairs: int, min_margin: float,
                   seed: int) -> list[ScoredPair]:
    """Up to `n_pairs` (top-quantile, bottom-quantile) question pairs, sampled without repeats."""
    ranked = sorted(scores, key=lambda q: (-scores[q], q))
    k = max(1, round(quantile * len(ranked)))
    if len(ranked) < 2:
        return []
    k = min(k, len(ranked) // 2)
    top, bottom = ranked[:k], ranked[-k:]
    candidates = [ScoredPair(c, r, scores[c], scores[r]) for c in top for r in bottom]
    candidates = [p for p in candidates if p.margin > min_margin]
    random.Random(seed).shuffle(candidates)
    return sorted(candidates[:n_pairs], key=lambda p: (p.chosen, p.rejected))


def rationale_pairs(rationale_scores: list[dict], min_margin: float) -> list[ScoredPair]:
    """Per question, its best vs its worst rationale; questions whose rationales tie are skipped.

    Ties for best or worst are broken by rationale id, so the result does not depend on row order.
    """
    by_question: dict[str, list[dict]] = {}
    for row in rationale_scores:
        by_question.setdefault(row["question_id"], []).append(row)
    pairs = []
    for qid in sorted(by_question):
        rows = by_question[qid]
        best = min(rows, key=lambda r: (-r["score"], r["rationale_id"]))
        worst = min(rows, key=lambda r: (r["score"], r["rationale_id"]))
        pair = ScoredPair(best["rationale_id"], worst["rationale_id"], best["score"], worst["score"])
        if pair.margin > min_margin:
            pairs.append(pair)
    return pairs


def pair_id(run_id: str, student: str, signal: str, kind: str, pair: ScoredPair) -> str:
    key = f"{run_id}|{student}|{signal}|{kind}|{pair.chosen}|{pair.rejected}"
    return "p-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def load_signal_scores(ctx: RunContext, student: str, signal: str) -> list[dict]:
    """Draft rows with a `score` column from the chosen preference signal."""
    if signal == "icl":
        rows = ctx.store.draft_scores(ctx.run_id, student)
        for row in rows:
            row["score"] = row["accuracy"]
        return rows
    from arte_core.preferences.influence import influence_scores

    return influence_scores(ctx, student)


def build_pairs(ctx: RunContext, student: str, signal: str) -> list[dict]:
    """Pair rows ready for the store, with their prompts and texts."""
    cfg = ctx.config.pairs
    rows = load_signal_scores(ctx, student, signal)
    if not rows:
        raise ArteError(
            f"no {signal} scores for student '{student}' in run '{ctx.run_id}'; run `arte score` "
            f"{'(or `arte influence`) ' if signal == 'influence' else ''}first."
        )
    by_rationale = {r["rationale_id"]: r for r in rows}
    by_question = {r["question_id"]: r for r in rows}
    q_prompt = ctx.prompts.questions()
    out = []
    for pair in question_pairs(question_scores(rows), cfg.quantile, cfg.n_question_pairs, cfg.min_margin,
                               ctx.config.seed):
        chosen, rejected = by_question[pair.chosen], by_question[pair.rejected]
        out.append(_row(ctx, student, signal, "question", pair, q_prompt,
                        format_question_block(chosen["question"], chosen["target"]),
                        format_question_block(rejected["question"], rejected["target"])))
    for pair in rationale_pairs(rows, cfg.min_margin):
        chosen, rejected = by_rationale[pair.chosen], by_rationale[pair.rejected]
        prompt = ctx.prompts.plain_rationale(chosen["question"])
        out.append(_row(ctx, student, signal, "rationale", pair, prompt, chosen["text"], rejected["text"]))
    return out


def _row(ctx: RunContext, student: str, signal: str, kind: str, pair: ScoredPair, prompt: str,
         chosen: str, rejected: str) -> dict:
    return dict(pair_id=pair_id(ctx.run_id, student, signal, kind, pair), run_id=ctx.run_id, student=student,
                kind=kind, signal=signal, prompt=prompt, chosen=chosen, rejected=rejected,
                chosen_ref=pair.chosen, rejected_ref=pair.rejected, chosen_score=pair.chosen_score,
                rejected_score=pair.rejected_score, margin=pair.margin, created_at=utcnow())


def run_pairs(ctx: RunContext, student: str | None = None, signal: str | None = None) -> int:
    student = student or ctx.config.student
    signal = signal or ctx.config.pairs.signal
    scope = f"{student}|{signal}"
    if ctx.store.is_done(ctx.run_id, "pairs", scope):
        return len(ctx.store.pairs(ctx.run_id, student))
    rows = build_pairs(ctx, student, signal)
    with ctx.store.transaction():
        ctx.store.replace_pairs(ctx.run_id, student, signal, rows)
        ctx.store.mark_done(ctx.run_id, "pairs", scope, {"n_pairs": len(rows)})
    if not rows:
        ctx.reporter.log("no pairs: every question's rationales tied and no question scores differ; "
                         "more drafts or preference questions spread the scores.")
    return len(rows)

"""Step 3: build preference pairs from draft scores.

A draft's score comes from one preference signal (`pairs.signal`): 'icl' = the student's one-shot
score with the draft as its demo (ARTE), 'influence' = minus the draft's local data influence
(Montessori-Instruct), 'both' = the mean of the draft's percentile ranks under the two (drafts that
have both only). The one-shot score is `pairs.score`: balanced accuracy by default on label tasks (a
draft that only makes the student repeat its own answer earns chance, not the share of that label),
accuracy on open-answer tasks. A question's score is the mean of its rationales' scores.

Two pairing styles (`pairs.style`):
- 'arte': question pairs chosen from the top quantile of question scores and rejected from the
  bottom one; rationale pairs best vs worst rationale of one question.
- 'montessori': per teacher prompt, every helpful draft × every harmful draft. Rationales of one
  question share their (plain step-by-step) prompt; questions of one elicitation call share theirs.
  Helpful and harmful are relative to a neutral score (`pairs.neutral`): by default 0 for influence
  (the reference loss did not move, the paper's rule) and the median draft for the signals without a
  natural zero ('icl', 'both'); 'median' uses the median draft for influence too.
Rationale pairs always carry the plain step-by-step prompt. The pure functions take scores and
return pairs; `run_pairs` reads and writes the store, replacing the student's previous pair set
(the registry's runner marks it done with the signal, style and neutral point it was built with).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from statistics import mean, median

from arte_core.config import check_field
from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import format_question_block
from arte_core.stats import percentile_ranks
from arte_core.store import signals, utcnow
from arte_core.tasks.answers import is_label_task



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


def helpful_harmful_pairs(groups: dict[str, dict[str, float]], neutral: float, min_margin: float) -> list[ScoredPair]:
    """Montessori-Instruct's pairs: within each group (drafts written from one teacher prompt), every
    draft scored above `neutral` (helpful) against every draft scored below it (harmful)."""
    pairs = []
    for key in sorted(groups):
        scores = groups[key]
        helpful = sorted(i for i, s in scores.items() if s > neutral)
        harmful = sorted(i for i, s in scores.items() if s < neutral)
        pairs += [ScoredPair(c, r, scores[c], scores[r]) for c in helpful for r in harmful
                  if scores[c] - scores[r] > min_margin]
    return pairs


def combined_scores(icl_rows: list[dict], influence_rows: list[dict], key: str = "accuracy") -> list[dict]:
    """Drafts scored by both signals, `score` = the mean of their percentile ranks by the ICL score `key`
    and by −influence, so each signal weighs the same whatever its scale. Drafts missing a signal are
    left out."""
    influence = {r["rationale_id"]: r["influence"] for r in influence_rows}
    rows = [dict(r, influence=influence[r["rationale_id"]]) for r in icl_rows if r["rationale_id"] in influence]
    by_accuracy = percentile_ranks([r[key] for r in rows])
    by_influence = percentile_ranks([-r["influence"] for r in rows])
    for row, a, b in zip(rows, by_accuracy, by_influence):
        row["score"] = (a + b) / 2
    return rows


def pair_id(run_id: str, student: str, signal: str, kind: str, pair: ScoredPair, style: str = "arte") -> str:
    key = f"{run_id}|{student}|{signal}|{kind}|{pair.chosen}|{pair.rejected}"
    if style != "arte":  # ARTE-style ids predate the styles: decisions made on them stay attached
        key += f"|{style}"
    return "p-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def icl_score_column(ctx: RunContext) -> str:
    """The icl_scores column drafts rank on: `pairs.score`, but accuracy where answers are open (an
    integer or free-text task has no label set to balance over)."""
    if ctx.config.pairs.score == "balanced_accuracy" and is_label_task(ctx.task.answer_format, ctx.task.labels):
        return "balanced_accuracy"
    return "accuracy"


def load_signal_scores(ctx: RunContext, student: str, signal: str) -> list[dict]:
    """Draft rows with a `score` column from the chosen preference signal (higher = preferred)."""
    influence = signals.influence_rows(ctx.store, ctx.run_id, student) if signal != "icl" else []
    if signal == "influence":
        return [dict(row, score=-row["influence"]) for row in influence]
    column = icl_score_column(ctx)
    drafts = ctx.store.draft_scores(ctx.run_id, student)
    _check_scored_with(ctx, student, drafts, column)
    rows = [dict(row, score=row[column]) for row in drafts]
    return combined_scores(rows, influence, key="score") if signal == "both" else rows


def _check_scored_with(ctx: RunContext, student: str, drafts: list[dict], column: str) -> None:
    """Refuse drafts scored before the store kept `column`: an upgraded store keeps their old scores
    (NULL in the new columns) until the user rescores them, and ranking a mix would compare two rules."""
    old = sum(row[column] is None for row in drafts)
    if old:
        raise ArteError(f"{old} of {len(drafts)} drafts of student '{student}' in run '{ctx.run_id}' have no {column}: "
                        "they were scored by an older ARTE Studio (schema 2 or before). Score them anew with `arte rescore`, "
                        "or rank them on raw accuracy, as pairs were built then, with pairs.score: accuracy "
                        "(--pairs.score accuracy).")


def _missing_scores_error(ctx: RunContext, student: str, signal: str) -> ArteError:
    needs = {"icl": "`arte score`", "influence": "`arte influence`", "both": "`arte score` and `arte influence`"}
    what = "drafts scored by both signals" if signal == "both" else f"{signal} scores"
    return ArteError(f"no {what} for student '{student}' in run '{ctx.run_id}'; run {needs[signal]} "
                     f"for this student first (or build pairs from another signal).")


def scored_pairs(ctx: RunContext, rows: list[dict], signal: str, style: str) -> dict[str, list[ScoredPair]]:
    """Question and rationale pairs of one style over scored draft rows."""
    cfg = ctx.config.pairs
    by_question = question_scores(rows)
    if style == "arte":
        return {"question": question_pairs(by_question, cfg.quantile, cfg.n_question_pairs, cfg.min_margin,
                                           ctx.config.seed),
                "rationale": rationale_pairs(rows, cfg.min_margin)}
    calls = ctx.store.question_calls(ctx.run_id)
    question_groups: dict[str, dict[str, float]] = {}
    for qid, score in by_question.items():
        question_groups.setdefault(str(calls.get(qid, qid)), {})[qid] = score
    rationale_groups: dict[str, dict[str, float]] = {}
    for row in rows:
        rationale_groups.setdefault(row["question_id"], {})[row["rationale_id"]] = row["score"]
    neutral_q, neutral_r = neutral_points(by_question, rows, signal, cfg.neutral)
    return {"question": helpful_harmful_pairs(question_groups, neutral_q, cfg.min_margin),
            "rationale": helpful_harmful_pairs(rationale_groups, neutral_r, cfg.min_margin)}


def neutral_points(by_question: dict[str, float], rows: list[dict], signal: str, neutral: str) -> tuple[float, float]:
    """(question, rationale) scores that split helpful from harmful drafts in the Montessori style."""
    if signal == "influence" and neutral == "auto":
        return 0.0, 0.0
    return median(by_question.values()), median(r["score"] for r in rows)


def no_pairs_advice(ctx: RunContext, student: str, signal: str, style: str) -> str:
    """Why a build found no pairs, and what to change."""
    if style == "arte":
        return ("no pairs: every question's rationales tied and no question scores differ; more drafts or "
                "preference questions spread the scores.")
    rows = load_signal_scores(ctx, student, signal)
    neutral = neutral_points(question_scores(rows), rows, signal, ctx.config.pairs.neutral)[1]
    above = sum(r["score"] > neutral for r in rows)
    below = sum(r["score"] < neutral for r in rows)
    return (f"no pairs: {above} drafts score above the neutral point ({neutral:+.4g}) and {below} below it, and no "
            "teacher prompt has drafts on both sides. (Without a warm-up, nearly every draft in the task's format "
            "lowers the reference loss.) Set pairs.neutral: median to split at the median draft, warm the "
            "student up (influence.warmup_fraction), or use pairs.style: arte.")


def build_pairs(ctx: RunContext, student: str, signal: str, style: str = "arte") -> list[dict]:
    """Pair rows ready for the store, with their prompts and texts."""
    check_field("pairs.signal", signal)  # callers may pass a signal and style other than the config's
    check_field("pairs.style", style)
    rows = load_signal_scores(ctx, student, signal)
    if not rows:
        raise _missing_scores_error(ctx, student, signal)
    by_rationale = {r["rationale_id"]: r for r in rows}
    by_question = {r["question_id"]: r for r in rows}
    found = scored_pairs(ctx, rows, signal, style)
    q_prompt = ctx.prompts.questions()
    out = []
    for pair in found["question"]:
        chosen, rejected = by_question[pair.chosen], by_question[pair.rejected]
        out.append(_row(ctx, student, signal, style, "question", pair, q_prompt,
                        format_question_block(chosen["question"], chosen["target"]),
                        format_question_block(rejected["question"], rejected["target"])))
    for pair in found["rationale"]:
        chosen, rejected = by_rationale[pair.chosen], by_rationale[pair.rejected]
        prompt = ctx.prompts.plain_rationale(chosen["question"])
        out.append(_row(ctx, student, signal, style, "rationale", pair, prompt, chosen["text"], rejected["text"]))
    return out


def _row(ctx: RunContext, student: str, signal: str, style: str, kind: str, pair: ScoredPair, prompt: str,
         chosen: str, rejected: str) -> dict:
    return dict(pair_id=pair_id(ctx.run_id, student, signal, kind, pair, style), run_id=ctx.run_id,
                student=student, kind=kind, signal=signal, style=style, prompt=prompt, chosen=chosen,
                rejected=rejected, chosen_ref=pair.chosen, rejected_ref=pair.rejected,
                chosen_score=pair.chosen_score, rejected_score=pair.rejected_score, margin=pair.margin,
                created_at=utcnow())


def run_pairs(ctx: RunContext, student: str) -> dict:
    """Build the student's pairs from `pairs.signal` in `pairs.style`, replacing the pairs it had: DPO
    and the exports use the student's one current pair set. A build that finds no pairs keeps the
    previous set and says why. Returns what the stage records (`n_pairs`)."""
    signal, style = ctx.config.pairs.signal, ctx.config.pairs.style
    rows = build_pairs(ctx, student, signal, style)
    if not rows:
        raise ArteError(no_pairs_advice(ctx, student, signal, style))
    ctx.store.replace_pairs(ctx.run_id, student, rows)
    return {"n_pairs": len(rows)}

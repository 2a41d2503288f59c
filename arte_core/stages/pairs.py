"""Step 3: build preference pairs from draft scores.

A draft's score comes from one preference signal (`pairs.signal`): 'icl' = the student's one-shot
score with the draft as its demo (ARTE), 'influence' = minus the draft's local data influence
(Montessori-Instruct), 'both' = the mean of the draft's percentile ranks under the two (drafts that
have both only). The one-shot score is `pairs.score`: balanced accuracy by default on label tasks (a
draft that only makes the student repeat its own answer earns chance, not the share of that label),
accuracy on open-answer tasks, or the mean answer log-probability (`pairs.score: answer_logprob`, measured
by `score.metric: answer_logprob`). A question's score is the mean of its rationales' scores.

Two pairing styles (`pairs.style`):
- 'arte': question pairs chosen from the top quantile of question scores and rejected from the
  bottom one; rationale pairs best vs worst rationale of one question.
- 'montessori': per teacher prompt, every helpful draft × every harmful draft. Rationales of one
  question share their (plain step-by-step) prompt; questions of one elicitation call share theirs.
  Helpful and harmful are relative to a neutral score (`pairs.neutral`): by default 0 for influence
  (the reference loss did not move, the paper's rule) and the median draft for the signals without a
  natural zero ('icl', 'both'); 'median' uses the median draft for influence too.
Rationale pairs always carry the plain step-by-step prompt.

ICL scores rank as exact fractions of integer counts (pair_evidence.exact_score), so equal counts tie
wherever they are compared or averaged, and ties are never split across a group boundary; answer
log-probabilities are continuous and rank as they are. Every candidate pair carries its paired test on
the shared preference items (pair_evidence.py: exact McNemar or sign tests on counts, Wilcoxon
signed-rank on log-probabilities); a pair is formed only when the test favours its chosen side at
p ≤ `pairs.max_p`.

The pure functions take scores and return pairs; `run_pairs` reads and writes the store, replacing
the student's previous pair set (the registry's runner marks it done with the signal, style, neutral
point and max_p it was built with).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction
from statistics import mean, median

from arte_core.config import check_field
from arte_core.context import RunContext
from arte_core.errors import ArteError
from arte_core.prompts import format_question_block
from arte_core.stages.pair_evidence import (WILCOXON, PairTest, exact_score, question_logprob_test, question_test,
                                            rationale_logprob_test, rationale_test, untested)
from arte_core.stats import average_ranks, min_discordant_for
from arte_core.store import decisions, signals, utcnow
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


def quantile_groups(scores: dict, quantile: float) -> tuple[list[str], list[str]]:
    """(top, bottom) questions, best first: the `quantile` share at each end, ties never split. A
    question tied with the last one in a group is in it too; questions that tie across both boundaries
    (a flat middle reaching both ends) are in neither, since they are no better than the bottom."""
    ranked = sorted(scores, key=lambda q: (-scores[q], q))
    if len(ranked) < 2:
        return [], []
    k = min(max(1, round(quantile * len(ranked))), len(ranked) // 2)
    top_cut, bottom_cut = scores[ranked[k - 1]], scores[ranked[-k]]
    top = [q for q in ranked if scores[q] >= top_cut]
    bottom = [q for q in ranked if scores[q] <= bottom_cut]
    both = set(top) & set(bottom)
    return [q for q in top if q not in both], [q for q in bottom if q not in both]


def question_pairs(scores: dict[str, float], quantile: float, n_pairs: int, min_margin: float,
                   seed: int) -> list[ScoredPair]:
    """Up to `n_pairs` (top-quantile, bottom-quantile) question pairs, sampled without repeats."""
    top, bottom = quantile_groups(scores, quantile)
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
    left out. `exact_score` is the same mean as a fraction (ranks are whole or half numbers), so
    drafts whose ranks sum alike tie."""
    influence = {r["rationale_id"]: r["influence"] for r in influence_rows}
    rows = [dict(r, influence=influence[r["rationale_id"]]) for r in icl_rows if r["rationale_id"] in influence]
    by_accuracy = average_ranks([r[key] for r in rows])
    by_influence = average_ranks([-r["influence"] for r in rows])
    for row, a, b in zip(rows, by_accuracy, by_influence):
        # percentile rank = (rank - 1) / (n - 1); one draft alone sits at 1/2
        exact = (Fraction(a) + Fraction(b) - 2) / (2 * (len(rows) - 1)) if len(rows) > 1 else Fraction(1, 2)
        row["exact_score"], row["score"] = exact, float(exact)
    return rows


def pair_id(run_id: str, student: str, signal: str, kind: str, pair: ScoredPair, style: str = "arte") -> str:
    key = f"{run_id}|{student}|{signal}|{kind}|{pair.chosen}|{pair.rejected}"
    if style != "arte":  # ARTE-style ids predate the styles: decisions made on them stay attached
        key += f"|{style}"
    return "p-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def icl_score_column(ctx: RunContext) -> str:
    """The icl_scores column drafts rank on: `pairs.score`, but accuracy where answers are open (an
    integer or free-text task has no label set to balance over); answer_logprob reads its mean."""
    if ctx.config.pairs.score == "answer_logprob":
        return LOGPROB_COLUMN
    if ctx.config.pairs.score == "balanced_accuracy" and is_label_task(ctx.task.answer_format, ctx.task.labels):
        return "balanced_accuracy"
    return "accuracy"


LOGPROB_COLUMN = "mean_answer_logprob"


def load_signal_scores(ctx: RunContext, student: str, signal: str) -> list[dict]:
    """Draft rows with a `score` column from the chosen preference signal (higher = preferred)."""
    influence = signals.influence_rows(ctx.store, ctx.run_id, student) if signal != "icl" else []
    if signal == "influence":
        return [dict(row, score=-row["influence"]) for row in influence]
    column = icl_score_column(ctx)
    drafts = ctx.store.draft_scores(ctx.run_id, student)
    if column == LOGPROB_COLUMN:
        rows = _logprob_rows(ctx, student, drafts)
        return combined_scores(rows, influence, key="score") if signal == "both" else rows
    _check_scored_with(ctx, student, drafts, column)
    outcomes = decisions.draft_item_outcomes(ctx.store, ctx.run_id, student)
    missing = [row["rationale_id"] for row in drafts if not outcomes.get(row["rationale_id"])]
    if missing:
        raise ArteError(f"{len(missing)} of {len(drafts)} scored drafts of student '{student}' have no per-item "
                        f"answers (icl_items), e.g. {missing[0]}: their score cannot be tested. Score them anew "
                        "with `arte rescore`.")
    targets = ({item["item_index"]: ctx.task.normalise(item["target"]) for item in ctx.pref_items}
               if column == "balanced_accuracy" else None)
    # `score` stays the stored value users see; pairs rank on `exact_score`, its exact fraction of counts
    rows = [dict(row, score=row[column], outcomes=outcomes[row["rationale_id"]],
                 exact_score=exact_score(outcomes[row["rationale_id"]], targets)) for row in drafts]
    return combined_scores(rows, influence, key="score") if signal == "both" else rows


def _logprob_rows(ctx: RunContext, student: str, drafts: list[dict]) -> list[dict]:
    """Draft rows ranked on their mean answer log-probability, `outcomes` = its per-item values (what the
    Wilcoxon test pairs). Refused while any scored draft has none: a mix would rank on two rules."""
    found = signals.draft_logprob_scores(ctx.store, ctx.run_id, student)
    missing = [row["rationale_id"] for row in drafts if found[row["rationale_id"]]["mean"] is None]
    if missing:
        raise ArteError(f"{len(missing)} of {len(drafts)} drafts of student '{student}' in run '{ctx.run_id}' have no "
                        f"answer log-probability (e.g. {missing[0]}): measure it with `arte score --score.metric "
                        "answer_logprob` (no answer is generated again), or rank on another pairs.score.")
    return [dict(row, score=found[row["rationale_id"]]["mean"], outcomes=found[row["rationale_id"]]["items"])
            for row in drafts]


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
    """Question and rationale pairs of one style over scored draft rows (ranked on `exact_score`
    where the rows have it)."""
    cfg = ctx.config.pairs
    rows = [dict(row, score=row.get("exact_score", row["score"])) for row in rows]
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


def within_noise_advice(ctx: RunContext, candidates: list[dict]) -> str:
    """Why every candidate pair was left out by its test, and what to change."""
    max_p, n_items = ctx.config.pairs.max_p, len(ctx.pref_items)
    kinds = {kind: sum(c["kind"] == kind for c in candidates) for kind in ("rationale", "question")}
    best = min(candidates, key=lambda c: (c["p_value"], -c["n_chosen_only"]))
    if best["pair_test"] == WILCOXON:
        return (f"no pairs: all {len(candidates)} candidate pairs are within noise: none passes a Wilcoxon "
                f"signed-rank test of answer log-probabilities at p ≤ pairs.max_p = {max_p:g} on the {n_items} "
                f"preference items (the closest: chosen higher on {best['n_chosen_only']} of {best['n_shared']} items, "
                f"p = {best['p_value']:.3g}; with no item against it, 6 items reach 0.05). Score on more preference "
                "items (score.n_pref, in a new run) or raise pairs.max_p (1 keeps every candidate, each with its p).")
    needed = min_discordant_for(max_p)
    reach = (f"a pair needs at least {needed} discordant items, all favouring its chosen side, to reach p ≤ {max_p:g}"
             if needed is not None else "no pair can reach p ≤ 0")
    return (f"no pairs: all {len(candidates)} candidate pairs ({kinds['rationale']} rationale, {kinds['question']} "
            f"question) are within noise: none favours its chosen side at p ≤ pairs.max_p = {max_p:g} on the "
            f"{n_items} preference items both sides answered (the closest: {best['n_chosen_only']} vs "
            f"{best['n_rejected_only']} discordant items, p = {best['p_value']:.3g}). On {n_items} items {reach}. "
            "Score on more preference items (score.n_pref, in a new run) or raise pairs.max_p "
            "(--pairs.max_p 0.2; 1 keeps every candidate, each with its p).")


def pair_tests(signal: str, found: dict[str, list[ScoredPair]], rows: list[dict],
               continuous: bool = False) -> dict[tuple, PairTest]:
    """(kind, chosen, rejected) -> the pair's paired test: exact tests on right/wrong outcomes, Wilcoxon on
    `continuous` ones (answer log-probabilities); untested pairs where `signal` has no per-item outcomes."""
    pairs = [(kind, pair) for kind in ("question", "rationale") for pair in found[kind]]
    if signal != "icl":
        return {(kind, p.chosen, p.rejected): untested(signal) for kind, p in pairs}
    rationale_test_, question_test_ = ((rationale_logprob_test, question_logprob_test) if continuous
                                       else (rationale_test, question_test))
    by_rationale = {r["rationale_id"]: r["outcomes"] for r in rows}
    by_question: dict[str, list[dict]] = {}
    for row in rows:
        by_question.setdefault(row["question_id"], []).append(row["outcomes"])
    return {(kind, p.chosen, p.rejected):
            rationale_test_(by_rationale[p.chosen], by_rationale[p.rejected]) if kind == "rationale"
            else question_test_(by_question[p.chosen], by_question[p.rejected]) for kind, p in pairs}


def build_pairs(ctx: RunContext, student: str, signal: str, style: str = "arte") -> list[dict]:
    """Candidate pair rows ready for the store, with their prompts, texts and paired tests (whether or
    not each passes `pairs.max_p`: `formed_pairs` picks those that do)."""
    check_field("pairs.signal", signal)  # callers may pass a signal and style other than the config's
    check_field("pairs.style", style)
    rows = load_signal_scores(ctx, student, signal)
    if not rows:
        raise _missing_scores_error(ctx, student, signal)
    by_rationale = {r["rationale_id"]: r for r in rows}
    by_question = {r["question_id"]: r for r in rows}
    found = scored_pairs(ctx, rows, signal, style)
    if ctx.config.elicit.question_source == "pool":
        # The teacher never writes questions in this run (they come from the task's pool), so teaching
        # it which questions the student prefers would train a skill it is never asked to use.
        found["question"] = []
    tests = pair_tests(signal, found, rows, continuous=icl_score_column(ctx) == LOGPROB_COLUMN)
    q_prompt = ctx.prompts.questions()
    out = []
    for pair in found["question"]:
        chosen, rejected = by_question[pair.chosen], by_question[pair.rejected]
        out.append(_row(ctx, student, signal, style, "question", pair, q_prompt,
                        format_question_block(chosen["question"], chosen["target"]),
                        format_question_block(rejected["question"], rejected["target"]),
                        tests["question", pair.chosen, pair.rejected]))
    for pair in found["rationale"]:
        chosen, rejected = by_rationale[pair.chosen], by_rationale[pair.rejected]
        prompt = ctx.prompts.plain_rationale(chosen["question"])
        out.append(_row(ctx, student, signal, style, "rationale", pair, prompt, chosen["text"], rejected["text"],
                        tests["rationale", pair.chosen, pair.rejected]))
    return out


def formed_pairs(candidates: list[dict], max_p: float) -> list[dict]:
    """The candidates that are evidence: untested ones, and tested ones whose test passes `max_p`."""
    return [row for row in candidates if PairTest(**{k: row[k] for k in PairTest.__dataclass_fields__}).passes(max_p)]


def _row(ctx: RunContext, student: str, signal: str, style: str, kind: str, pair: ScoredPair, prompt: str,
         chosen: str, rejected: str, test: PairTest) -> dict:
    return dict(pair_id=pair_id(ctx.run_id, student, signal, kind, pair, style), run_id=ctx.run_id,
                student=student, kind=kind, signal=signal, style=style, prompt=prompt, chosen=chosen,
                rejected=rejected, chosen_ref=pair.chosen, rejected_ref=pair.rejected,
                chosen_score=float(pair.chosen_score), rejected_score=float(pair.rejected_score),
                margin=float(pair.margin), created_at=utcnow(), **test.columns())


def run_pairs(ctx: RunContext, student: str) -> dict:
    """Build the student's pairs from `pairs.signal` in `pairs.style`, replacing the pairs it had: DPO
    and the exports use the student's one current pair set. Only candidates whose paired test passes
    `pairs.max_p` are formed. A build that forms no pairs keeps the previous set and says why. Returns
    what the stage records (`n_pairs`, and `n_within_noise`: candidates left out by their test)."""
    signal, style = ctx.config.pairs.signal, ctx.config.pairs.style
    candidates = build_pairs(ctx, student, signal, style)
    if not candidates:
        raise ArteError(no_pairs_advice(ctx, student, signal, style))
    rows = formed_pairs(candidates, ctx.config.pairs.max_p)
    if not rows:
        raise ArteError(within_noise_advice(ctx, candidates))
    ctx.store.replace_pairs(ctx.run_id, student, rows)
    return {"n_pairs": len(rows), "n_within_noise": len(candidates) - len(rows)}

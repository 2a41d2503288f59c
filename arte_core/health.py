"""Signal health: does a run's student-preference signal measure what it claims? One line per check
(label balance, above chance, label copying, unparsed and truncated answers, reliability, significant
pairs, agreement of the two signals, the aligned teacher's DPO rewards, the alignment check), each ok / warn / bad with its
number, its n, its 95% interval where one applies, and one sentence on what to change.

`n/a` marks a line nothing can be measured for yet (no influence run, no aligned teacher, an open-answer
task has no labels to balance); its message says what would measure it. Rows an older version stored
without a column a line needs make that line `warn`, with the command that fills it in.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from arte_core.config import RunConfig, config_from_yaml
from arte_core.config.run import DPO_UNMOVED_NATS
from arte_core.errors import ArteError
from arte_core.stats import bootstrap_ci, crossed_bootstrap_ci, spearman_ci, wilson_interval, youden_j
from arte_core.store import Store
from arte_core.store import alignment as alignment_store
from arte_core.store import health as queries
from arte_core.store import signals

STATUSES = ("ok", "warn", "bad", "n/a")
# A task whose preference targets take at most this many values (and repeat) has a label set.
MAX_LABELS = 8
# Label balance: ok when every label's count is within one item of the others (what a stratified split
# promises); warn while the majority label's share exceeds 1/k by at most this; bad beyond.
LABEL_SHARE_WARN_EXCESS = 0.15
# Above chance, on Youden's J (label tasks) or the gain over always answering the commonest target,
# (accuracy - majority) / (1 - majority) (open tasks): bad below BAD; ok from OK when the interval
# also excludes 0; warn between.
ABOVE_CHANCE_BAD = 0.05
ABOVE_CHANCE_OK = 0.2
# Label copying, as the share of answers that repeat the demo's own answer beyond chance,
# (rate - 1/k) / (1 - 1/k) (like kappa): warn from "fair" (0.2), bad from "moderate" (0.4) agreement
# with the demo (Landis & Koch's bands).
COPY_EXCESS_WARN = 0.2
COPY_EXCESS_BAD = 0.4
# Unparsed and truncated answers: ok up to 5% of answers, warn up to 20%, bad beyond.
ANSWER_LOSS_OK = 0.05
ANSWER_LOSS_WARN = 0.2
# Split-half reliability of draft scores: ok from 0.8 (the usual bar for ranking individuals), warn from 0.5.
RELIABILITY_OK = 0.8
RELIABILITY_WARN = 0.5
# Share of tested pairs at p <= pairs.max_p: ok from 0.8, warn from 0.5. A looser max_p keeps pairs within
# noise (the demo keeps every candidate); only those at the conventional level at most count as evidence.
SIGNIFICANCE = 0.05
SIGNIFICANT_PAIRS_OK = 0.8
SIGNIFICANT_PAIRS_WARN = 0.5
# Spearman of ICL score and -influence: bad at or below 0; ok from 0.3 when the interval excludes 0.
AGREEMENT_OK = 0.3
# DPO, at the last logged step: reward accuracy bad at or below 0.5 (a coin), ok from 0.7; the reward
# margin in nats of log-ratio (margin / beta): bad below 0.1 (the teacher did not move), ok from 1.
REWARD_ACCURACY_OK = 0.7
REWARD_ACCURACY_BAD = 0.5
MARGIN_NATS_BAD = DPO_UNMOVED_NATS  # config.run: `arte align` warns by the same threshold
MARGIN_NATS_OK = 1.0
N_RESAMPLES = 1000

TITLES = {
    "label_balance": "label balance of the preference set",
    "above_chance": "student above chance",
    "label_copy": "label copying",
    "unparsed": "unparsed answers",
    "truncated": "truncated answers",
    "reliability": "split-half reliability (ICL)",
    "reliability_influence": "split-half reliability (influence)",
    "reliability_answer_logprob": "split-half reliability (answer log-probability)",
    "significant_pairs": "significant pairs",
    "signal_agreement": "agreement of ICL and influence",
    "dpo_reward_accuracy": "DPO reward accuracy",
    "dpo_reward_margin": "DPO reward margin",
    "alignment_check": "alignment check (aligned − base teacher drafts)",
}
RESCORE = "not measured: scored by an older version; run `arte rescore`."


@dataclass(frozen=True)
class HealthLine:
    """One check: `value` with its 95% interval (`ci_low`, `ci_high`; None where none applies) over `n`."""

    key: str
    status: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    message: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _line(key: str, status: str, value=None, ci=(None, None), n=None, message: str = "") -> HealthLine:
    def rounded(x):
        return None if x is None or not math.isfinite(float(x)) else round(float(x), 4)
    return HealthLine(key, status, rounded(value), rounded(ci[0]), rounded(ci[1]), None if n is None else int(n),
                      message)


def signal_health(store: Store, run_id: str, student: str, config: RunConfig | None = None) -> list[HealthLine]:
    """Every health line of one run × student, in a fixed order. `config` defaults to the run's own."""
    run = store.run(run_id)
    config = config or _run_config(run)
    targets = [str(t).strip() for t in queries.preference_targets(store, run_id)]
    labels = _label_set(targets)
    answers = queries.draft_answers(store, run_id, student)
    scores = queries.draft_score_columns(store, run_id, student)
    if scores.empty:
        raise ArteError(f"student {student!r} has no scored drafts in run {run_id!r}; run `arte score` first.")
    table = _AnswerTable(answers, targets)
    comparison = signals.signal_comparison(store, run_id, student)
    # Influence's reliability only where the run has influence scores; its agreement line says how to get them.
    influence = [reliability(store, run_id, student, "influence")] if comparison["n"] else []
    logprob = ([reliability(store, run_id, student, "answer_logprob")]
               if signals.logprob_item_matrix(store, run_id, student)["rationale_ids"] else [])
    return [label_balance(targets, labels), above_chance(table, labels), label_copy(scores, labels),
            unparsed(table), truncated(table), reliability(store, run_id, student, "icl"), *logprob, *influence,
            significant_pairs(queries.pair_p_values(store, run_id, student), config.pairs.max_p),
            signal_agreement(comparison), *dpo_lines(store, run_id, config.align.beta, student),
            *alignment_check_lines(store, run_id, student)]


def _run_config(run: dict) -> RunConfig:
    """The config the run was made with; the defaults when it no longer loads (a field since removed)."""
    try:
        return config_from_yaml(run["config_yaml"], f"run {run['run_id']}'s config")
    except ArteError:
        return RunConfig()


def _label_set(targets: list[str]) -> tuple[str, ...]:
    """The preference targets' distinct values when they form a label set (few, and repeating), else ()."""
    distinct = sorted(set(targets))
    return tuple(distinct) if 2 <= len(distinct) <= MAX_LABELS and len(distinct) < len(targets) else ()


class _AnswerTable:
    """The per-item answers as drafts × items arrays (correct, unparsed, truncated) over the items every
    draft answered; `truncated` is None when an older version scored any of them (it was not recorded)."""

    def __init__(self, answers: pd.DataFrame, targets: list[str]):
        if answers.empty:
            self.correct = self.unparsed = np.zeros((0, 0))
            self.truncated, self.item_targets = np.zeros((0, 0)), []
            return
        correct = answers.pivot(index="rationale_id", columns="item_index", values="correct").dropna(axis=1)
        items = correct.columns

        def table(column: str) -> np.ndarray:
            return answers.pivot(index="rationale_id", columns="item_index", values=column)[items].to_numpy(dtype=float)

        self.correct = correct.to_numpy(dtype=float)
        self.unparsed = table("unparsed")
        self.truncated = table("truncated") if answers["truncated"].notna().all() else None
        self.item_targets = [targets[int(i)] for i in items]

    @property
    def shape(self) -> tuple[int, int]:
        return self.correct.shape


def _pooled_share(matrix: np.ndarray) -> tuple[float, tuple]:
    """The share of 1s over a drafts × items table, with its two-way bootstrap interval."""
    ci = crossed_bootstrap_ci(*matrix.shape, lambda r, c: matrix[np.ix_(r, c)].mean(), N_RESAMPLES)
    return float(matrix.mean()), ci


def label_balance(targets: list[str], labels: tuple[str, ...]) -> HealthLine:
    if not labels:
        return _line("label_balance", "n/a", n=len(targets),
                     message="open answers (no label set): there is no label balance to check.")
    counts = Counter(targets)
    majority, top = counts.most_common(1)[0]
    share = top / len(targets)
    shown = " / ".join(f"{counts[label]} {label}" for label in labels)
    if max(counts[label] for label in labels) - min(counts[label] for label in labels) <= 1:
        return _line("label_balance", "ok", share, n=len(targets),
                     message=f"{shown}: balanced within one item; always answering {majority} scores {share:.2f}.")
    status = "warn" if share <= 1 / len(labels) + LABEL_SHARE_WARN_EXCESS else "bad"
    return _line("label_balance", status, share, n=len(targets),
                 message=f"{shown}: always answering {majority} scores {share:.2f}, so accuracy rewards that label; "
                         "start a new run (this version's split is stratified by label) or rank pairs on "
                         "balanced accuracy (`pairs.score`).")


def above_chance(table: _AnswerTable, labels: tuple[str, ...]) -> HealthLine:
    n_drafts, n_items = table.shape
    if n_drafts == 0 or n_items == 0:
        return _line("above_chance", "n/a", n=0, message="no per-item answers stored; run `arte score`.")
    over = f"{n_drafts} drafts × {n_items} items"
    if labels:
        item_labels = np.array(table.item_targets, dtype=object)
        value = youden_j(table.correct, item_labels)
        ci = crossed_bootstrap_ci(n_drafts, n_items, lambda r, c: youden_j(table.correct[np.ix_(r, c)],
                                                                            item_labels[c]), N_RESAMPLES)
        gain = value
        what = f"Youden's J {'undefined' if value is None else f'{value:.2f}'} over {over}"
    else:
        counts = Counter(table.item_targets)
        baseline = counts.most_common(1)[0][1] / n_items
        value, ci = _pooled_share(table.correct)
        gain = (value - baseline) / (1 - baseline) if baseline < 1 else 0.0
        what = f"accuracy {value:.2f} over {over} against {baseline:.2f} for always giving the commonest answer"
        return _above_chance_line(value, ci, n_drafts * n_items, gain, None if ci[0] is None else ci[0] - baseline,
                                  what)
    return _above_chance_line(value, ci, n_drafts * n_items, gain, ci[0], what)


def _above_chance_line(value, ci, n, gain, gain_low, what) -> HealthLine:
    if gain is None or gain < ABOVE_CHANCE_BAD:
        return _line("above_chance", "bad", value, ci, n,
                     f"{what}: the student's answer does not follow the question, so its scores rank drafts on "
                     "something else; use a stronger student or an easier task (and check the truncation line).")
    if gain_low is None or gain_low <= 0 or gain < ABOVE_CHANCE_OK:
        return _line("above_chance", "warn", value, ci, n,
                     f"{what}: barely above chance; more preference items (`score.n_pref`) narrow the interval, "
                     "a stronger student widens the gap.")
    return _line("above_chance", "ok", value, ci, n, f"{what}: the student answers the questions.")


def label_copy(scores: pd.DataFrame, labels: tuple[str, ...]) -> HealthLine:
    measured = scores["label_copy_rate"].dropna().to_numpy(dtype=float)
    if len(measured) == 0:
        return _line("label_copy", "warn", n=0, message=RESCORE)
    chance = 1 / len(labels) if labels else 0.0
    mean = float(measured.mean())
    ci = bootstrap_ci(lambda rows: float(measured[rows].mean()), len(measured), N_RESAMPLES)
    excess = (mean - chance) / (1 - chance)
    older = len(scores) - len(measured)
    note = f" ({older} drafts scored by an older version left out; `arte rescore` measures them)" if older else ""
    what = f"the student repeats the demo's own answer on {mean:.0%} of items (chance {chance:.0%}){note}"
    if excess >= COPY_EXCESS_BAD:
        return _line("label_copy", "bad", mean, ci, len(measured),
                     f"{what}: the score mostly says which answer a draft ends with; rank pairs on balanced accuracy "
                     "(`pairs.score: balanced_accuracy`) and prefer a student that reads the question.")
    if excess >= COPY_EXCESS_WARN:
        return _line("label_copy", "warn", mean, ci, len(measured),
                     f"{what}: the demo's answer sways the score; rank pairs on balanced accuracy (`pairs.score`).")
    return _line("label_copy", "ok", mean, ci, len(measured), f"{what}: the demo's answer does not drive the score.")


def _answer_loss(key: str, matrix: np.ndarray | None, what: str, advice: str) -> HealthLine:
    if matrix is None:
        return _line(key, "warn", n=0, message=RESCORE)
    if matrix.size == 0:
        return _line(key, "n/a", n=0, message="no per-item answers stored; run `arte score`.")
    rate, ci = _pooled_share(matrix)
    status = "ok" if rate <= ANSWER_LOSS_OK else "warn" if rate <= ANSWER_LOSS_WARN else "bad"
    text = f"{int(matrix.sum())} of {matrix.size} answers {what} ({rate:.1%})"
    return _line(key, status, rate, ci, matrix.size, f"{text}." if status == "ok" else f"{text}: {advice}")


def unparsed(table: _AnswerTable) -> HealthLine:
    return _answer_loss("unparsed", table.unparsed, "gave no answer the task's format reads",
                        "they count as wrong; let answers finish (`score.max_new_tokens`, 0 = the task's budget) "
                        "or check the task's answer format.")


def truncated(table: _AnswerTable) -> HealthLine:
    return _answer_loss("truncated", table.truncated, "hit the token cap",
                        "raise `score.max_new_tokens` (0 = the task's own budget) so answers finish.")


def reliability(store: Store, run_id: str, student: str, signal: str) -> HealthLine:
    """The split-half reliability of one signal's draft scores ('icl', 'influence' or, once
    `score.metric: answer_logprob` measured it, 'answer_logprob'; store/signals.py)."""
    key = "reliability" if signal == "icl" else f"reliability_{signal}"
    found = signals.signal_reliability(store, run_id, student, signal)
    r, n_drafts, n_items = found["reliability"], found["n_drafts"], found["n_items"]
    ci = (found["ci_low"], found["ci_high"])
    if signal == "influence" and n_drafts == 0:
        return _line(key, "warn", n=0, message="not measured: influence was probed by an older version, which "
                                               "kept no per-reference-item losses.")
    if n_drafts < 3 or n_items < 2:
        return _line(key, "n/a", n=n_drafts,
                     message=f"{n_drafts} drafts × {n_items} items: too few to split in halves.")
    if r is None:
        return _line(key, "bad", None, ci, n_drafts,
                     message=f"undefined over {n_drafts} drafts × {n_items} items: the two halves' scores do not "
                             "vary together (or not at all); the scores cannot rank drafts. Raise `score.n_pref`.")
    needed = found.get("n_items_for_0_8")
    target = (f"about {needed} preference items would reach {RELIABILITY_OK}" if needed
              else f"no number of items reaches {RELIABILITY_OK} at this reliability")
    what = f"split-half reliability of {found['score']} {r:.2f} over {n_drafts} drafts × {n_items} items; {target}"
    versus, confounded = _versus_icl_score(store, run_id, student) if signal == "answer_logprob" else ("", False)
    what += versus
    if confounded:  # reliable or not, it ranks label confidence
        return _line(key, "warn", r, ci, n_drafts, f"{what}: rank pairs on it only once the student is above chance.")
    if r >= RELIABILITY_OK:
        return _line(key, "ok", r, ci, n_drafts, f"{what}.")
    status = "warn" if r >= RELIABILITY_WARN else "bad"
    advice = f"start a run with `score.n_pref {needed}`" if needed else "use a student whose answers follow the question"
    return _line(key, status, r, ci, n_drafts, f"{what}: {advice}.")


def _versus_icl_score(store: Store, run_id: str, student: str) -> tuple[str, bool]:
    """How the answer log-probability's reliability compares with the ICL score's on the same drafts, and
    whether it ranks label confidence (its Spearman with the label-copy rate is below 0 beyond noise)."""
    d = signals.metric_reliability_difference(store, run_id, student)
    def span(low, high):
        return "" if low is None else f" [{low:+.2f}, {high:+.2f}]"
    versus = (f"; its difference from {d['score']}'s is undefined on these drafts" if d["difference"] is None else
              f"; minus {d['score']}'s on the same {d['n_drafts']} drafts: {d['difference']:+.2f}"
              f"{span(d['ci_low'], d['ci_high'])} (95%, paired bootstrap over drafts)")
    if d["copy_spearman"] is not None:
        versus += f"; Spearman with the label-copy rate {d['copy_spearman']:+.2f}{span(d['copy_ci_low'], d['copy_ci_high'])}"
    confounded = d["copy_ci_high"] is not None and d["copy_ci_high"] < 0
    return versus + (" (below 0: it ranks how undecided a demo leaves the student between labels, not the "
                     "question)" if confounded else ""), confounded


def significant_pairs(p_values: list[float | None], max_p: float) -> HealthLine:
    if not p_values:
        return _line("significant_pairs", "n/a", n=0, message="no pairs yet; run `arte pairs`.")
    tested = [p for p in p_values if p is not None and math.isfinite(p)]
    untested = len(p_values) - len(tested)
    if not tested:
        return _line("significant_pairs", "warn", n=0,
                     message=f"not tested: none of the {len(p_values)} pairs has a paired test (built by an older "
                             "version, or from influence, which has none); rebuild ICL pairs with `arte pairs`.")
    max_p = min(max_p, SIGNIFICANCE)
    significant = sum(p <= max_p for p in tested)
    share = significant / len(tested)
    note = f"; {untested} not tested" if untested else ""
    what = f"{significant} of {len(tested)} tested pairs differ beyond noise (p ≤ {max_p}){note}"
    ci = wilson_interval(significant, len(tested))
    if share >= SIGNIFICANT_PAIRS_OK:
        return _line("significant_pairs", "ok", share, ci, len(tested), f"{what}.")
    status = "warn" if share >= SIGNIFICANT_PAIRS_WARN else "bad"
    return _line("significant_pairs", status, share, ci, len(tested),
                 f"{what}: the others are within noise; more preference items (`score.n_pref`) give pairs that are "
                 f"evidence, or set `pairs.max_p` to keep only those.")


def signal_agreement(comparison: dict) -> HealthLine:
    """Spearman of ICL score and -influence over the drafts with both (`signals.signal_comparison`)."""
    n, rho = comparison["n"], comparison["spearman"]
    if n == 0:
        return _line("signal_agreement", "n/a", n=0,
                     message="one signal only: run `arte influence` to compare ICL with local data influence.")
    ci = spearman_ci(rho, n)
    if rho is None:
        return _line("signal_agreement", "bad", None, ci, n,
                     f"undefined over {n} drafts: one signal gives every draft the same score.")
    what = f"Spearman {rho:.2f} between ICL score and −influence over {n} drafts"
    if rho <= 0:
        return _line("signal_agreement", "bad", rho, ci, n,
                     f"{what}: the two signals rank drafts unrelatedly (or oppositely); pairs from `both` mix two "
                     "different things: pick the signal whose reliability line is ok.")
    if ci[0] is None or ci[0] <= 0 or rho < AGREEMENT_OK:
        return _line("signal_agreement", "warn", rho, ci, n,
                     f"{what}: weak agreement; read the Signals tab's disagreements before trusting either.")
    return _line("signal_agreement", "ok", rho, ci, n, f"{what}: the signals agree.")


def dpo_lines(store: Store, run_id: str, beta: float, student: str | None = None) -> list[HealthLine]:
    metrics, logs = queries.teacher_training_log(store, run_id, student)
    rewarded = [row for row in logs if "rewards/accuracies" in row and "rewards/margins" in row]
    if metrics is None or not rewarded:
        why = ("no aligned teacher yet; run `arte align`." if metrics is None
               else "the DPO log has no rewards (logged by an older version); rerun `arte align`.")
        return [_line("dpo_reward_accuracy", "n/a", message=why), _line("dpo_reward_margin", "n/a", message=why)]
    last = rewarded[-1]
    n_pairs = metrics.get("n_pairs")
    accuracy, margin = float(last["rewards/accuracies"]), float(last["rewards/margins"])
    step = f"at step {last.get('step', len(logs))}"
    if accuracy <= REWARD_ACCURACY_BAD:
        acc_status, acc_advice = "bad", ": no better than a coin; check the pairs' health lines above."
    elif accuracy < REWARD_ACCURACY_OK:
        acc_status, acc_advice = "warn", ": the teacher prefers the chosen side only sometimes."
    else:
        acc_status, acc_advice = "ok", "."
    nats = margin / beta
    what = f"final reward margin {margin:.4f} {step} ({nats:.3f} nats of log-ratio at beta {beta})"
    if nats < MARGIN_NATS_BAD:
        margin_status = "bad"
        advice = (f"{what}: the teacher did not move; train longer (`align.epochs`) or raise "
                  "`align.learning_rate`.")
    elif nats < MARGIN_NATS_OK:
        margin_status, advice = "warn", f"{what}: the teacher moved a little; more steps would separate the sides."
    else:
        margin_status, advice = "ok", f"{what}."
    return [_line("dpo_reward_accuracy", acc_status, accuracy, n=n_pairs,
                  message=f"the teacher's implicit reward ranks the chosen side first on {accuracy:.0%} of the last "
                          f"logged batch {step} (TRL logs a batch mean, so no interval){acc_advice}"),
            _line("dpo_reward_margin", margin_status, margin, n=n_pairs, message=advice)]


def alignment_check_lines(store: Store, run_id: str, student: str) -> list[HealthLine]:
    """The direct test of alignment (stages/check.py): ok when the interval of aligned − base accuracy on the
    held-out check items lies above 0, warn when it holds 0, bad below. No line while the run lacks either arm."""
    check = alignment_store.alignment_check(store, run_id, student)
    if check is None or "difference" not in check:
        return [_line("alignment_check", "n/a", n=0, message="not measured yet; run `arte check` (after "
                      "`arte regenerate`).")] if alignment_store.has_both_arms(store, run_id, student) else []
    d, ci, n, arms = check["difference"], (check["ci_low"], check["ci_high"]), check["n_items"], check["arms"]
    what = (f"the student's accuracy with aligned minus base teacher drafts as demo {d:+.3f} on {n} held-out "
            f"items ({arms['arte']['n_drafts']} aligned, {arms['base']['n_drafts']} base drafts; "
            f"{check['n_better']} items better, {check['n_worse']} worse; Wilcoxon p = {check['wilcoxon_p']:.3g})")
    if ci[0] is not None and ci[0] > 0:
        return [_line("alignment_check", "ok", d, ci, n, f"{what}: the aligned teacher writes what this student learns from.")]
    if ci[1] is not None and ci[1] < 0:
        return [_line("alignment_check", "bad", d, ci, n, f"{what}: alignment made the drafts worse for this "
                      "student; check the pairs' and DPO lines above before training on them.")]
    return [_line("alignment_check", "warn", d, ci, n, f"{what}: within noise; more check items (`check.n_items`) "
                  "or drafts narrow the interval.")]


def summary_counts(lines: list[HealthLine]) -> dict[str, int]:
    """How many lines have each status."""
    counts = Counter(line.status for line in lines)
    return {status: counts.get(status, 0) for status in STATUSES}

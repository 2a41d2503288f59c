"""Whether a pair is evidence: exact draft scores from integer counts, and each pair's paired exact
test on the preference items both sides answered.

Both sides of a pair answered the same preference items, so the comparison is paired: only the items
where the sides differ (discordant items) carry information.
- Rationale pairs (two drafts): McNemar's exact test on the items only one draft's demo got right.
- Question pairs (two questions, each with several rationales): per item, the share of each question's
  rationales that got it right; an exact sign test over the items where the shares differ (the same
  binomial test; with one rationale per question it is McNemar's). Chosen because it is exact whatever
  the ties: per-item shares tie often (4 rationales give 5 values), and a Wilcoxon test with ties has
  no exact distribution in scipy.
- Pairs ranked on answer log-probability (`pairs.score: answer_logprob`), a continuous per-item score:
  a Wilcoxon signed-rank test (scipy.stats.wilcoxon, two-sided; exact without ties up to 50 items) over
  the items' differences chosen − rejected (for question pairs, of each question's mean over its
  rationales). Items with no difference carry no direction and are dropped (scipy's 'wilcox' rule).
  `n_chosen_only` / `n_rejected_only` then count the items where the chosen / rejected side is higher.
  The chosen side has the higher mean log-probability by construction (that is how it was chosen), so
  a pair passes at p ≤ max_p; a sign count against it is still shown.
The influence signal has one loss change per draft (no per-item outcome is paired), and 'both' ranks
on combined ranks of two signals, so their pairs carry no test (NULL p) and say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import stats as scipy_stats

from arte_core.stats import mcnemar_exact

MCNEMAR = "mcnemar_exact"
SIGN_TEST = "item_sign_test"
WILCOXON = "wilcoxon_signed_rank"
UNTESTED_REASONS = {
    "influence": "none: influence is one reference-loss change per draft, no per-item outcome to pair",
    "both": "none: 'both' ranks on combined ranks of two signals; no one paired test covers both",
}


@dataclass(frozen=True)
class PairTest:
    p_value: float | None
    n_shared: int | None = None
    n_chosen_only: int | None = None  # discordant items favouring the chosen side
    n_rejected_only: int | None = None
    pair_test: str | None = None

    def passes(self, max_p: float) -> bool:
        """Evidence for the chosen side: its discordant items outnumber the rejected side's at p ≤ max_p.
        max_p = 1 keeps every candidate; an untested pair (no p) is always kept."""
        if self.p_value is None or max_p >= 1:
            return True
        if self.pair_test == WILCOXON:  # direction: the chosen side's higher mean, by construction
            return self.p_value <= max_p
        return self.n_chosen_only > self.n_rejected_only and self.p_value <= max_p

    def columns(self) -> dict:
        return dict(p_value=self.p_value, n_shared=self.n_shared, n_chosen_only=self.n_chosen_only,
                    n_rejected_only=self.n_rejected_only, pair_test=self.pair_test)


def untested(signal: str) -> PairTest:
    return PairTest(None, pair_test=UNTESTED_REASONS.get(signal, f"none: signal {signal!r} has no per-item test"))


def exact_score(outcomes: dict[int, bool], targets: dict[int, str] | None) -> Fraction:
    """A draft's score from its item outcomes as an exact fraction: n_correct / n_items, or with
    `targets` (item -> label) the mean per-label recall (balanced accuracy) over the labels present.
    Equal counts give equal fractions, so they tie wherever they are compared or averaged."""
    if not outcomes:
        raise ValueError("a draft without item outcomes has no score")
    if targets is None:
        return Fraction(sum(outcomes.values()), len(outcomes))
    by_label: dict[str, list[int]] = {}
    for item, correct in outcomes.items():
        counts = by_label.setdefault(targets[item], [0, 0])
        counts[0] += bool(correct)
        counts[1] += 1
    return sum((Fraction(hits, n) for hits, n in by_label.values()), Fraction(0)) / len(by_label)


def rationale_test(chosen: dict[int, bool], rejected: dict[int, bool]) -> PairTest:
    """McNemar's exact test of two drafts on the items both answered."""
    shared = chosen.keys() & rejected.keys()
    b = sum(chosen[i] and not rejected[i] for i in shared)
    c = sum(rejected[i] and not chosen[i] for i in shared)
    return PairTest(mcnemar_exact(b, c), len(shared), b, c, MCNEMAR)


def question_test(chosen: list[dict[int, bool]], rejected: list[dict[int, bool]]) -> PairTest:
    """Sign test over items of two questions' per-item shares of rationales right (each list holds one
    outcome dict per rationale; items are those every rationale of both questions answered)."""
    sides = chosen + rejected
    shared = set.intersection(*(set(o) for o in sides)) if sides and all(sides) else set()
    better = worse = 0
    for item in shared:
        difference = (Fraction(sum(o[item] for o in chosen), len(chosen))
                      - Fraction(sum(o[item] for o in rejected), len(rejected)))
        better += difference > 0
        worse += difference < 0
    return PairTest(mcnemar_exact(better, worse), len(shared), better, worse, SIGN_TEST)


def wilcoxon_p(differences) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences; zero differences are dropped, and with no
    nonzero difference there is no evidence either way (p = 1)."""
    differences = np.asarray(differences, dtype=float)
    if not np.any(differences != 0):
        return 1.0
    return float(scipy_stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)


def _wilcoxon_test(differences: list[float]) -> PairTest:
    return PairTest(wilcoxon_p(differences), len(differences), sum(d > 0 for d in differences),
                    sum(d < 0 for d in differences), WILCOXON)


def rationale_logprob_test(chosen: dict[int, float], rejected: dict[int, float]) -> PairTest:
    """Wilcoxon signed-rank test of two drafts' answer log-probabilities on the items both have."""
    shared = sorted(chosen.keys() & rejected.keys())
    return _wilcoxon_test([chosen[i] - rejected[i] for i in shared])


def question_logprob_test(chosen: list[dict[int, float]], rejected: list[dict[int, float]]) -> PairTest:
    """Wilcoxon signed-rank test over items of two questions' mean answer log-probabilities (each list holds
    one item -> log-probability dict per rationale; items are those every rationale of both has)."""
    sides = chosen + rejected
    shared = sorted(set.intersection(*(set(o) for o in sides))) if sides and all(sides) else []
    return _wilcoxon_test([float(np.mean([o[i] for o in chosen]) - np.mean([o[i] for o in rejected])) for i in shared])

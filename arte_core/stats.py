"""The statistics ARTE Studio reports and ranks by, in one place: ranks, rank correlation, rater
agreement and the noise of a measured accuracy.

Ranks, correlations and kappa come from scipy and statsmodels; this module only decides what an
undefined value returns (None, never NaN) so callers can print "undefined".
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats.inter_rater import cohens_kappa as _statsmodels_kappa
from statsmodels.stats.contingency_tables import mcnemar as _statsmodels_mcnemar
from statsmodels.stats.proportion import proportion_confint

# The normal quantile of a two-sided 95% interval, as the plots have always rounded it.
Z95 = 1.96


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of their positions (Spearman's convention)."""
    if len(values) == 0:
        return []
    return scipy_stats.rankdata(values, method="average").tolist()


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Ranks scaled to [0, 1] (lowest 0, highest 1; ties share their mean rank; one value: 0.5)."""
    if len(values) < 2:
        return [0.5] * len(values)
    return [(r - 1) / (len(values) - 1) for r in average_ranks(values)]


def spearman(xs: Sequence[float], ys: Sequence[float], min_points: int = 3) -> float | None:
    """Spearman's rank correlation over the pairs where both values are present (ties share ranks).

    None when it is undefined or too thin to mean anything: fewer than `min_points` pairs, or one side
    without spread."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    present = ~(np.isnan(x) | np.isnan(y))
    x, y = x[present], y[present]
    if len(x) < max(2, min_points) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(scipy_stats.spearmanr(x, y).statistic)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels for the same items; None when undefined (no items, lists of
    different lengths, or chance agreement is certain because both raters always use one label)."""
    if len(a) == 0 or len(a) != len(b):
        return None
    labels = sorted(set(a) | set(b))
    table = pd.crosstab(pd.Categorical(list(a), categories=labels), pd.Categorical(list(b), categories=labels),
                        dropna=False).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 when chance agreement is certain
        kappa = float(_statsmodels_kappa(table, return_results=False))
    return kappa if math.isfinite(kappa) else None


def binomial_sd(p: float | None, n: int) -> float:
    """Standard deviation of an accuracy measured on n items when the true accuracy is p (NaN when
    unknown: no items or no p)."""
    if n <= 0 or p is None or (isinstance(p, float) and math.isnan(p)):
        return float("nan")
    p = min(max(float(p), 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n)


def ci_half_width(sd: pd.Series | float, n: pd.Series | int) -> pd.Series | float:
    """Half width of a normal 95% interval of a mean from its values' sd and count (0 where fewer
    than two values)."""
    if isinstance(n, pd.Series):
        return (Z95 * sd / np.sqrt(n.clip(lower=1))).where(n > 1, 0.0).fillna(0.0)
    return Z95 * sd / math.sqrt(n) if n > 1 else 0.0


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion of `successes` in `n` trials (statsmodels). Unlike the
    normal interval it stays inside [0, 1] and is not zero-width at 0/n or n/n, which a test set's
    accuracy can be. (NaN, NaN) when there are no trials."""
    if n <= 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(int(successes), int(n), alpha=0.05, method="wilson")
    return float(low), float(high)


def balanced_accuracy_noise(label_counts: Sequence[int]) -> tuple[float, float]:
    """(chance, sd) of a balanced accuracy (mean recall per label) over items with these per-label counts.

    Any answer that ignores the question scores 1/k in expectation (k labels): a constant answer gets
    recall 1 on one label and 0 on the rest, a guess 1/k on each. The sd is that of a guesser at 1/k:
    each recall is a binomial share over its label's items, so Var = Σ p(1-p)/n_l / k². With equal counts
    it equals binomial_sd(1/k, n). (NaN, NaN) without labels."""
    counts = [int(c) for c in label_counts if int(c) > 0]
    if not counts:
        return float("nan"), float("nan")
    k = len(counts)
    chance = 1 / k
    return chance, math.sqrt(sum(chance * (1 - chance) / n for n in counts)) / k


# -- reliability of a score measured on items -------------------------------------------------------


def spearman_brown(r: float | None, factor: float = 2.0) -> float | None:
    """The reliability of a test `factor` times as long as one with reliability `r` (Spearman–Brown
    prophecy); None when undefined (no r, or r = -1 doubled)."""
    if r is None or not math.isfinite(r):
        return None
    denominator = 1 + (factor - 1) * r
    return factor * r / denominator if denominator != 0 else None


def items_needed(reliability: float | None, n_items: int, target: float = 0.8) -> int | None:
    """Items a score needs for `target` reliability, by Spearman–Brown from its `reliability` on
    `n_items` items; None when no length reaches it (reliability undefined, ≤ 0, or n_items 0)."""
    if reliability is None or not math.isfinite(reliability) or reliability <= 0 or n_items <= 0:
        return None
    if reliability >= 1:
        return 1
    factor = target * (1 - reliability) / (reliability * (1 - target))
    return max(1, math.ceil(factor * n_items - 1e-9))  # 1e-9: a factor that is whole up to rounding stays whole


def split_halves(n_items: int, n_splits: int, seed: int = 0, strata: Sequence | None = None) -> np.ndarray:
    """`n_splits` seeded random splits of the items into two halves: a bool array (splits × items),
    True = first half. With `strata` (e.g. each item's target) every stratum is split within one item,
    so both halves hold the labels in the same shares; half sizes differ by at most one."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n_items)] if strata is None else \
        [np.flatnonzero(np.asarray(strata, dtype=object) == s) for s in dict.fromkeys(strata)]
    halves = np.zeros((n_splits, n_items), dtype=bool)
    for split in range(n_splits):
        # Shuffled strata laid end to end in a shuffled order, then alternating halves: each stratum and
        # the whole split within one item. Strata of one item each (open answers) give a plain random split.
        order = np.concatenate([rng.permutation(groups[g]) for g in rng.permutation(len(groups))]) \
            if n_items else np.arange(0)
        halves[split, order[rng.integers(2)::2]] = True
    return halves


def half_scores(matrix: np.ndarray, in_half: np.ndarray, labels: Sequence | None = None) -> np.ndarray:
    """Each row's score on the items of one half: the mean over its columns, or with `labels` the mean
    per-label recall over the labels present in the half (balanced accuracy)."""
    matrix = np.asarray(matrix, dtype=float)
    in_half = np.asarray(in_half, dtype=bool)
    if labels is None:
        return matrix[:, in_half].mean(axis=1)
    labels = np.asarray(labels, dtype=object)
    present = [label for label in dict.fromkeys(labels[in_half])]
    return np.mean([matrix[:, in_half & (labels == label)].mean(axis=1) for label in present], axis=0)


def _row_pearson(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of xs with the same row of ys (NaN where a row has no spread)."""
    dx, dy = xs - xs.mean(axis=-1, keepdims=True), ys - ys.mean(axis=-1, keepdims=True)
    sxx, syy = (dx * dx).sum(axis=-1), (dy * dy).sum(axis=-1)
    # Spread below rounding noise is no spread: equal scores computed by different sums must not correlate.
    defined = (sxx > 1e-12) & (syy > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(axis=-1) / np.sqrt(sxx * syy)
    return np.where(defined, np.clip(r, -1.0, 1.0), np.nan)


def split_half_scores(matrix: np.ndarray, halves: np.ndarray, labels: Sequence | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(first, second): each split's row scores on its two halves, arrays of splits × rows."""
    halves = np.atleast_2d(halves)
    first = np.array([half_scores(matrix, h, labels) for h in halves])
    second = np.array([half_scores(matrix, ~h, labels) for h in halves])
    return first, second


def split_half_correlations(matrix: np.ndarray, halves: np.ndarray, labels: Sequence | None = None) -> np.ndarray:
    """Per split, Pearson's r over rows of the two halves' scores (uncorrected; NaN where undefined)."""
    return _row_pearson(*split_half_scores(matrix, halves, labels))


def _corrected_mean(correlations: np.ndarray) -> float | None:
    """Spearman–Brown of the mean defined r, floored at -1: below that (a mean half correlation under
    -1/3) the prophecy means only "no consistent ranking", and unbounded values would swamp a CI."""
    defined = correlations[~np.isnan(correlations)]
    if not len(defined):
        return None
    corrected = spearman_brown(float(defined.mean()))
    return None if corrected is None else max(-1.0, corrected)


def split_half_reliability(matrix: np.ndarray, n_splits: int = 200, seed: int = 0, strata: Sequence | None = None,
                           labels: Sequence | None = None) -> float | None:
    """Split-half reliability of row scores (rows = drafts, columns = items): Pearson's r of the two
    halves' scores, averaged over `n_splits` seeded random splits (stratified by `strata` when given),
    then Spearman–Brown corrected to the full length. A half's score is its mean, or with `labels` its
    balanced accuracy (`half_scores`). None when no split gives a defined r.

    The mean r is corrected, not the corrected values averaged: Spearman–Brown is unbounded near
    r = -1, where one unlucky split would dominate a mean of corrected values."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < 3 or matrix.shape[1] < 2:
        return None
    halves = split_halves(matrix.shape[1], n_splits, seed, strata)
    return _corrected_mean(split_half_correlations(matrix, halves, labels))


def bootstrap_ci(statistic, n: int, n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `statistic(indices)` over `n` units resampled with
    replacement; resamples where the statistic is undefined (None/NaN) are left out. (None, None)
    when fewer than half of the resamples give a value."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        value = statistic(rng.integers(0, n, n))
        if value is not None and math.isfinite(value):
            values.append(value)
    if n < 2 or len(values) < n_resamples / 2:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def split_half_ci(matrix: np.ndarray, n_splits: int = 200, n_resamples: int = 1000, seed: int = 0,
                  strata: Sequence | None = None, labels: Sequence | None = None,
                  level: float = 0.95) -> tuple[float | None, float | None]:
    """Bootstrap interval of `split_half_reliability` over rows (drafts), the splits held fixed."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < 3 or matrix.shape[1] < 2:
        return None, None
    first, second = split_half_scores(matrix, split_halves(matrix.shape[1], n_splits, seed, strata), labels)
    return bootstrap_ci(lambda rows: _corrected_mean(_row_pearson(first[:, rows], second[:, rows])),
                        matrix.shape[0], n_resamples, seed, level)


# -- is a correlation more than chance? -------------------------------------------------------------


def spearman_ci(rho: float | None, n: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Interval of Spearman's rho by Fisher's z with Bonett & Wright's (2000) variance
    (1 + rho²/2) / (n - 3); (None, None) with fewer than 4 pairs or no rho."""
    if rho is None or n < 4:
        return None, None
    z = math.atanh(min(max(rho, -0.999999), 0.999999))
    half = scipy_stats.norm.ppf(0.5 + level / 2) * math.sqrt((1 + rho * rho / 2) / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def permutation_null(xs: Sequence[float], ys: Sequence[float], n_permutations: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict | None:
    """What chance gives Spearman's rho of xs and ys: rho over `n_permutations` seeded shuffles of ys.

    Returns `low`/`high` (the central `level` range of the shuffled rhos), `p` (two-sided:
    (1 + shuffles with |rho| ≥ |observed|) / (1 + shuffles)) and `observed`; None when rho is undefined."""
    observed = spearman(xs, ys, min_points=3)
    if observed is None:
        return None
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    rng = np.random.default_rng(seed)
    shuffled = _row_pearson(np.broadcast_to(scipy_stats.rankdata(x), (n_permutations, len(x))),
                            np.array([rng.permutation(scipy_stats.rankdata(y)) for _ in range(n_permutations)]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(shuffled, [tail, 100 - tail])
    extreme = int(np.sum(np.abs(shuffled) >= abs(observed) - 1e-12))
    return dict(observed=observed, low=float(low), high=float(high), p=(1 + extreme) / (1 + n_permutations),
                n_permutations=n_permutations)


# -- paired exact tests on shared items ---------------------------------------------------------------


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p of a paired comparison on shared items: `b` items only the first side
    got right, `c` only the second (concordant items carry no information). Under no difference each
    discordant item favours either side with probability 1/2, so p = min(1, 2·P(X ≤ min(b, c))) for
    X ~ Bin(b + c, 1/2) (statsmodels). 1.0 without discordant items. The same binomial test is the
    exact sign test of paired differences (b positive, c negative, zeros dropped)."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got {b} and {c}")
    if b + c == 0:
        return 1.0
    return float(_statsmodels_mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def min_discordant_for(max_p: float) -> int | None:
    """The fewest discordant items, all favouring one side, at which `mcnemar_exact` reaches p ≤ max_p
    (2·0.5^n ≤ max_p); None when no count does (max_p ≤ 0). What a pair needs at the least."""
    if max_p <= 0:
        return None
    n = 0
    while mcnemar_exact(n, 0) > max_p:
        n += 1
    return n


# -- above chance: a student's answers against the items' labels ---------------------------------------


def youden_j(correct: np.ndarray, labels: Sequence) -> float | None:
    """Youden's J of answers pooled over rows (drafts): the mean recall per label, chance-corrected,
    (BA - 1/k) / (1 - 1/k) over the k labels in `labels` (one per column). With two labels this is
    sensitivity + specificity - 1; 0 for an answer that ignores the question (a constant label, a guess),
    1 for all correct. None with fewer than two labels or no rows."""
    correct = np.asarray(correct, dtype=float)
    labels = np.asarray(labels, dtype=object)
    present = list(dict.fromkeys(labels))
    if correct.ndim != 2 or correct.shape[0] == 0 or len(present) < 2:
        return None
    k = len(present)
    balanced = float(np.mean([correct[:, labels == label].mean() for label in present]))
    return (balanced - 1 / k) / (1 - 1 / k)


def crossed_bootstrap_ci(n_rows: int, n_columns: int, statistic, n_resamples: int = 1000, seed: int = 0,
                         level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of `statistic(rows, columns)` (index arrays) when both the rows (drafts) and
    the columns (items) of a table are samples: each resample draws rows and columns with replacement,
    independently (a two-way bootstrap). Pooling a drafts × items table as independent answers would
    pretend each answer is new evidence, while one draft's answers, and one item's, go together.
    Resamples where the statistic is undefined are left out; (None, None) when fewer than half give one."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        value = statistic(rng.integers(0, n_rows, n_rows), rng.integers(0, n_columns, n_columns))
        if value is not None and math.isfinite(value):
            values.append(value)
    if n_rows < 1 or n_columns < 2 or len(values) < n_resamples / 2:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# -- powered evaluation: paired differences, seeds × items, the smallest effect a design detects ------


def paired_bootstrap_ci(first: Sequence[float], second: Sequence[float], n_resamples: int = 2000, seed: int = 0,
                        level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of mean(first) − mean(second) over items both sides answered: each resample
    draws items with replacement and keeps the two answers of an item together (the pairing is what
    makes the difference precise). (None, None) with fewer than two items."""
    diffs = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    return bootstrap_ci(lambda rows: float(diffs[rows].mean()), len(diffs), n_resamples, seed, level)


def hierarchical_bootstrap(groups: Sequence[Sequence[float]], n_resamples: int = 2000,
                           rng: np.random.Generator | None = None) -> np.ndarray:
    """`n_resamples` bootstrap values of the mean over groups (seeds) of each group's mean over its values
    (items): each resample draws the groups with replacement, then, within each drawn group, its values
    with replacement (a two-stage bootstrap: seed-to-seed and item-to-item variation both count)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    arrays = [np.asarray(g, dtype=float) for g in groups]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("hierarchical_bootstrap needs at least one group and no empty group")
    picks = rng.integers(0, len(arrays), (n_resamples, len(arrays)))
    totals = np.zeros(n_resamples)
    for slot in range(len(arrays)):
        for index, values in enumerate(arrays):
            rows = np.flatnonzero(picks[:, slot] == index)
            if rows.size:
                totals[rows] += values[rng.integers(0, values.size, (rows.size, values.size))].mean(axis=1)
    return totals / len(arrays)


def minimum_detectable_effect(se: float | None, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest true difference a two-sided z-test at `alpha` detects with probability `power` when
    the difference is estimated with standard error `se`: (z_{1-α/2} + z_power) · se, 2.80 · se at
    α 0.05 and 80% power (statsmodels' NormalIndPower with one sample of size 1 solves for the effect in
    units of se, which also counts the far tail's negligible power). None without a finite se."""
    if se is None or not math.isfinite(se) or se < 0:
        return None
    from statsmodels.stats.power import NormalIndPower

    units = NormalIndPower().solve_power(effect_size=None, nobs1=1, alpha=alpha, power=power, ratio=0,
                                         alternative="two-sided")
    return float(units) * float(se)

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

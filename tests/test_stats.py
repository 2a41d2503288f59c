"""The statistics module against cases computed by hand."""

import math

import pandas as pd
import pytest

from arte_core.stats import Z95, average_ranks, binomial_sd, ci_half_width, cohen_kappa, percentile_ranks, spearman


def test_average_ranks_give_ties_the_mean_of_their_positions():
    # sorted: 0.1 (1), 0.5 0.5 (positions 2 and 3 -> 2.5 each), 0.9 (4)
    assert average_ranks([0.5, 0.1, 0.5, 0.9]) == [2.5, 1.0, 2.5, 4.0]
    assert average_ranks([7, 7, 7]) == [2.0, 2.0, 2.0]
    assert average_ranks([]) == []


def test_percentile_ranks_scale_ranks_to_zero_one():
    # ranks 2.5, 1, 2.5, 4 -> (r - 1) / 3
    assert percentile_ranks([0.5, 0.1, 0.5, 0.9]) == [0.5, 0.0, 0.5, 1.0]
    assert percentile_ranks([3.0, 1.0]) == [1.0, 0.0]
    assert percentile_ranks([3.0]) == [0.5] and percentile_ranks([]) == []


def test_spearman_with_ties_by_hand():
    # x ranks 1, 2, 3, 4; y = [1, 3, 2, 2] ranks 1, 4, 2.5, 2.5.
    # Pearson of the ranks: dx = -1.5, -.5, .5, 1.5; dy = -1.5, 1.5, 0, 0
    # sum dx*dy = 2.25 - 0.75 = 1.5; sum dx^2 = 5; sum dy^2 = 4.5 -> 1.5 / sqrt(22.5)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 2]) == pytest.approx(1.5 / math.sqrt(22.5))
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_is_none_when_undefined_or_too_thin():
    assert spearman([1, 2], [1, 2]) is None  # fewer than the default 3 points
    assert spearman([1, 2], [2, 1], min_points=2) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [5, 5, 5]) is None  # no spread
    assert spearman([1], [1], min_points=1) is None  # one point never correlates
    # missing values drop their pair: three pairs remain, ranked the same way
    assert spearman(pd.Series([1, 2, None, 4]), pd.Series([1, 2, 3, 4])) == pytest.approx(1.0)
    assert spearman(pd.Series([1, 2, None]), pd.Series([1, 2, 3])) is None


def test_cohen_kappa_by_hand():
    # a: a a b, b: a b b. observed agreement 2/3; chance: P(a) 2/3 * 1/3 + P(b) 1/3 * 2/3 = 4/9
    # kappa = (2/3 - 4/9) / (1 - 4/9) = (2/9) / (5/9) = 0.4
    assert cohen_kappa(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx(0.4)
    assert cohen_kappa(["l", "r", "l", "r"], ["l", "r", "l", "r"]) == 1.0
    assert cohen_kappa(["l", "r", "l", "r"], ["r", "l", "r", "l"]) == -1.0
    # a label only one rater uses: observed 1/2, chance 1/2 * 1 = 1/2 -> 0
    assert cohen_kappa(["x", "y"], ["x", "x"]) == pytest.approx(0.0)


def test_cohen_kappa_is_none_when_undefined():
    assert cohen_kappa(["l", "l"], ["l", "l"]) is None  # chance agreement is certain
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["l"], ["l", "r"]) is None


def test_binomial_sd_by_hand():
    assert binomial_sd(0.5, 40) == pytest.approx(math.sqrt(0.25 / 40))  # 0.0791
    assert binomial_sd(0.0, 10) == 0.0
    assert binomial_sd(1.2, 4) == 0.0  # clipped to [0, 1]
    assert math.isnan(binomial_sd(0.5, 0)) and math.isnan(binomial_sd(None, 10))
    assert math.isnan(binomial_sd(float("nan"), 10))


def test_ci_half_width_by_hand():
    assert Z95 == 1.96
    assert ci_half_width(0.2, 4) == pytest.approx(1.96 * 0.2 / 2)
    assert ci_half_width(0.2, 1) == 0.0  # one value: no interval
    widths = ci_half_width(pd.Series([0.3, 0.5, None]), pd.Series([9, 1, 4]))
    assert widths.tolist() == pytest.approx([1.96 * 0.3 / 3, 0.0, 0.0])

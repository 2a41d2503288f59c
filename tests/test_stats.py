"""The statistics module against cases computed by hand."""

import math

import numpy as np
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


def test_wilson_interval_by_hand():
    from arte_core.stats import wilson_interval
    # p̂ = 0.7, z = 1.96, n = 10: center (0.7 + z²/20) / (1 + z²/10) = 0.6445,
    # half width z / (1 + z²/10) · sqrt(0.7·0.3/10 + z²/400) = 0.2477
    low, high = wilson_interval(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    # 0/10: not the zero-width interval a normal approximation gives; upper z²/(n + z²) = 0.2775
    assert [round(v, 4) for v in wilson_interval(0, 10)] == [0.0, 0.2775]
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_balanced_accuracy_noise_by_hand():
    from arte_core.stats import balanced_accuracy_noise
    # two labels, 5 items each: chance 1/2, sd sqrt(2 · 0.25/5) / 2 = 0.1581 = binomial_sd(0.5, 10)
    chance, sd = balanced_accuracy_noise([5, 5])
    assert chance == 0.5 and sd == pytest.approx(0.1581, abs=1e-4) and sd == pytest.approx(binomial_sd(0.5, 10))
    # the demo's 9 True / 3 False: sqrt(0.25/9 + 0.25/3) / 2 = 1/6, wider than the balanced set's
    assert balanced_accuracy_noise([9, 3]) == pytest.approx((0.5, 1 / 6))
    # three labels, 3 items each: sqrt(3 · (1/3)(2/3)/3) / 3 = 0.1571
    assert balanced_accuracy_noise([3, 3, 3]) == pytest.approx((1 / 3, 0.1571), abs=1e-4)
    assert all(math.isnan(v) for v in balanced_accuracy_noise([]))


def test_mcnemar_exact_by_hand():
    from arte_core.stats import mcnemar_exact
    # b = 7, c = 1: 8 discordant items; P(X ≤ 1 | Bin(8, 1/2)) = (1 + 8) / 256, doubled = 18/256
    assert mcnemar_exact(7, 1) == 0.0703125 and mcnemar_exact(1, 7) == 0.0703125
    # b = 6, c = 0: 2 · 1/64 = 0.03125; b = 5, c = 0: 2 · 1/32 = 0.0625
    assert mcnemar_exact(6, 0) == 0.03125 and mcnemar_exact(5, 0) == 0.0625
    # b = 3, c = 2: 2 · P(X ≤ 2 | Bin(5, 1/2)) = 2 · 16/32 > 1, capped at 1; no discordant item: 1
    assert mcnemar_exact(3, 2) == 1.0 and mcnemar_exact(0, 0) == 1.0
    # b = 9, c = 3: 2 · (1 + 12 + 66 + 220) / 4096 = 598/4096
    assert mcnemar_exact(9, 3) == pytest.approx(598 / 4096)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_min_discordant_for_by_hand():
    from arte_core.stats import min_discordant_for
    # 2 · 0.5^n ≤ 0.05 first at n = 6 (0.03125; n = 5 gives 0.0625); ≤ 0.2 at n = 4 (0.125)
    assert min_discordant_for(0.05) == 6 and min_discordant_for(0.2) == 4 and min_discordant_for(0.0625) == 5
    assert min_discordant_for(0) is None


def test_youden_j_by_hand():
    from arte_core.stats import youden_j
    labels = ["True", "True", "False", "False"]
    # recall True = 3/4, recall False = 1/4: BA 0.5, J = (0.5 - 1/2) / (1/2) = 0 (no better than chance)
    assert youden_j([[1, 1, 0, 0], [1, 0, 1, 0]], labels) == 0.0
    # recall True 1, recall False 1/2: J = 1 + 1/2 - 1 = 0.5
    assert youden_j([[1, 1, 1, 0]], labels) == 0.5
    # three labels, recalls 1, 1, 0: BA 2/3, J = (2/3 - 1/3) / (2/3) = 0.5
    assert youden_j([[1, 1, 0]], ["A", "B", "C"]) == pytest.approx(0.5)
    assert youden_j([[1, 0]], ["True", "True"]) is None


def test_crossed_bootstrap_ci_by_hand():
    from arte_core.stats import crossed_bootstrap_ci
    import numpy as np
    table = np.array([[0.0, 0.0], [1.0, 1.0]])
    # rows resampled: the mean is 0, 1/2 or 1 with chance 1/4, 1/2, 1/4, so the central 95% is [0, 1]
    assert crossed_bootstrap_ci(2, 2, lambda r, c: table[np.ix_(r, c)].mean()) == (0.0, 1.0)
    # a table that is the same everywhere has no spread to resample
    assert crossed_bootstrap_ci(3, 4, lambda r, c: 0.25) == (0.25, 0.25)
    assert crossed_bootstrap_ci(3, 1, lambda r, c: 0.25) == (None, None)  # one item: nothing to resample


# -- reliability (issue 15 item 5) ------------------------------------------------------------------

from arte_core.stats import (bootstrap_ci, half_scores, items_needed, permutation_null, spearman_brown,  # noqa: E402
                             spearman_ci, split_half_ci, split_half_correlations, split_half_reliability,
                             split_halves)

# Four drafts x four items; the split {0, 1} | {2, 3} gives half scores
#   first  = [1, .5, .5, 0]    second = [1, .5, 0, .5]
# deviations from the means (.5): [.5, 0, 0, -.5] and [.5, 0, -.5, 0]
# r = (.25) / sqrt(.5 * .5) = 0.5; Spearman-Brown doubled: 2 * .5 / (1 + .5) = 2/3.
SMALL_TABLE = [[1, 1, 1, 1],
               [1, 0, 1, 0],
               [0, 1, 0, 0],
               [0, 0, 0, 1]]


def test_split_half_correlation_of_one_fixed_split_by_hand():
    first_half = [[True, True, False, False]]
    assert split_half_correlations(SMALL_TABLE, first_half) == pytest.approx([0.5])
    assert spearman_brown(0.5) == pytest.approx(2 / 3)


def test_split_half_reliability_averaged_over_splits_by_hand():
    # Two items: every split puts one item in each half, so every split gives the same r:
    # x = [1, 1, 0, 0], y = [1, 0, 1, 0] -> r = 0; x = [1, 1, 0, 0], y = [1, 1, 0, 1]:
    # dx = [.5, .5, -.5, -.5], dy = [.25, .25, -.75, .25]; sum dx*dy = .5; sum dx^2 = 1; sum dy^2 = .75
    # r = .5 / sqrt(.75) = 0.57735; doubled: 2r / (1 + r) = 0.73205
    table = [[1, 1], [1, 1], [0, 0], [0, 1]]
    r = 0.5 / math.sqrt(0.75)
    assert split_half_reliability(table, n_splits=50, seed=3) == pytest.approx(2 * r / (1 + r))
    # Drafts that answer every item alike: both halves give each draft the same score, every split r = 1.
    assert split_half_reliability([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], n_splits=20) == pytest.approx(1.0)
    # No spread between drafts: undefined, never NaN.
    assert split_half_reliability([[1, 0, 1, 0]] * 4) is None


def test_split_halves_are_seeded_and_stratified():
    labels = ["T"] * 9 + ["F"] * 3
    halves = split_halves(12, 100, seed=0, strata=labels)
    assert (halves == split_halves(12, 100, seed=0, strata=labels)).all()
    assert (halves.sum(axis=1) == 6).all()
    false_in_first = halves[:, 9:].sum(axis=1)  # three F items: one or two in each half, never 0 or 3
    assert set(false_in_first) == {1, 2}
    assert len({tuple(h) for h in halves}) > 50  # the splits differ


def test_half_scores_balanced_accuracy_by_hand():
    # labels T T F F, half = items {0, 2}: recall on T = row[0], recall on F = row[2]; mean of the two
    table = [[1, 0, 0, 1], [1, 1, 1, 1]]
    assert half_scores(table, [True, False, True, False], labels=["T", "T", "F", "F"]).tolist() == [0.5, 1.0]
    # with three T and one F in the half: mean(T recalls) and F's recall weigh the same
    assert half_scores([[1, 1, 0, 0]], [True, True, True, True], labels=["T", "T", "T", "F"]).tolist() == \
        [pytest.approx((2 / 3 + 0) / 2)]


def test_items_needed_by_spearman_brown_prophecy():
    # factor = .8 (1 - .5) / (.5 (1 - .8)) = 4: 4 x 12 items
    assert items_needed(0.5, 12) == 48
    # factor = .8 * .2 / (.8 * .2) = 1
    assert items_needed(0.8, 12) == 12
    # factor = .8 * .1 / (.9 * .2) = 0.444 -> 5.33 -> 6 items would do
    assert items_needed(0.9, 12) == 6
    assert items_needed(0.0, 12) is None and items_needed(-0.2, 12) is None and items_needed(None, 12) is None


def test_bootstrap_ci_percentiles_and_undefined():
    # the mean of a resample of [0, 1] is 0, .5 or 1; a 95% interval of many resamples spans 0..1
    low, high = bootstrap_ci(lambda rows: float(np.mean(np.array([0.0, 1.0])[rows])), 2, n_resamples=400, seed=1)
    assert (low, high) == (0.0, 1.0)
    assert bootstrap_ci(lambda rows: None, 10) == (None, None)
    low, high = split_half_ci([[1, 1], [1, 1], [0, 0], [0, 1]] * 5, n_splits=10, n_resamples=200)
    r = 0.5 / math.sqrt(0.75)
    assert low < 2 * r / (1 + r) < high <= 1.0


def test_spearman_ci_by_fisher_z():
    # rho .5, n 28: z = atanh(.5) = 0.549306; se = sqrt((1 + .125) / 25) = 0.212132
    # 0.549306 -+ 1.959964 * 0.212132 = 0.133535 .. 0.965077 -> tanh: 0.132747 .. 0.746533
    low, high = spearman_ci(0.5, 28)
    assert low == pytest.approx(0.132747, abs=1e-6) and high == pytest.approx(0.746533, abs=1e-6)
    assert spearman_ci(0.5, 3) == (None, None) and spearman_ci(None, 30) == (None, None)


def test_permutation_null_brackets_zero_and_finds_a_perfect_ranking():
    perfect = permutation_null(range(10), range(10), n_permutations=999, seed=0)
    # Of 10! orders, only the identity gives rho = 1 (and one gives -1): no shuffle reaches |1|, so p = 1/1000
    assert perfect["observed"] == pytest.approx(1.0) and perfect["p"] == pytest.approx(1 / 1000)
    assert perfect["low"] < 0 < perfect["high"] and perfect["high"] < 0.8
    assert permutation_null([1, 2, 3], [5, 5, 5]) is None

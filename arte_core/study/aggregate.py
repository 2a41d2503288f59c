"""The study's statistics: arms × tasks over seeds and items, and whether ARTE beats the original teacher.

A study runs the loop once per task × seed; every run evaluates each arm (untrained, original, arte…)
on the run's test items, so within a seed the arms answer the same items. Input is a frame of evaluated
items with `task` and `seed` beside the columns of `store.study.study_eval_items`.

- **Arm accuracy** per task × arm × shots: the mean over seeds of each seed's accuracy, with a 95%
  percentile interval from a hierarchical bootstrap (resample seeds, then items within each drawn seed;
  `stats.hierarchical_bootstrap`), so both seed-to-seed and item-to-item variation widen it; never
  narrower than the Wilson interval of the cell's pooled items (a bootstrap of all-wrong answers collapses
  to [0, 0]). The unparsed
  and truncated rates are pooled shares of the cell's items.
- **ARTE − original** per task × shots and pooled over tasks (the mean of the tasks' differences): the
  same bootstrap over the per-item paired differences (treatment right − control right on one item of
  one seed). `p_mcnemar` is McNemar's exact test on the discordant items pooled over seeds (and tasks):
  items are paired within a seed; it treats the trained students as fixed. `p_seeds` is a one-sample t
  test of the per-seed mean differences (the seeds as the unit; None with fewer than two seeds).
- **Minimum detectable effect**: (z_{1-α/2} + z_{power}) × SE, with SE the standard deviation of the
  hierarchical bootstrap distribution of the difference (which carries the observed paired SD of items
  and the spread between seeds; undefined, None, when no item tells the arms apart, and the difference's
  interval is then ± the Wilson upper bound of 0 discordant items); at α 0.05 and 80% power that is 2.80 × SE (`stats.minimum_detectable_effect`,
  statsmodels' NormalIndPower). A true difference smaller than it would usually go unseen by this design.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from arte_core.stats import hierarchical_bootstrap, mcnemar_exact, minimum_detectable_effect, wilson_interval
from arte_core.study.evaluation import N_RESAMPLES, arm_rank, cell_seed, paired_items

ALPHA, POWER, LEVEL = 0.05, 0.8, 0.95
POOLED = "pooled"
TABLE_COLUMNS = ["task", "variant", "shots", "n_seeds", "n_items", "accuracy", "ci_low", "ci_high",
                 "unparsed_rate", "truncated_rate"]
DIFFERENCE_COLUMNS = ["task", "shots", "treatment", "control", "n_seeds", "n_items", "difference", "ci_low",
                      "ci_high", "se", "paired_sd", "treatment_only", "control_only", "p_mcnemar", "p_seeds", "mde"]


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high), float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def _seed_groups(frame: pd.DataFrame, column: str) -> tuple[list, list[np.ndarray]]:
    seeds, groups = [], []
    for seed, part in frame.groupby("seed", sort=True):
        seeds.append(seed)
        groups.append(part[column].to_numpy(dtype=float))
    return seeds, groups


def arm_table(items: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per task × arm × shots: n_seeds, n_items (all seeds), accuracy (mean of the seeds'
    accuracies) with its hierarchical-bootstrap 95% interval, unparsed and truncated rates."""
    rows = []
    for (task, variant, shots), cell in items.groupby(["task", "variant", "shots"], sort=True):
        seeds, groups = _seed_groups(cell, "correct")
        boot = hierarchical_bootstrap(groups, n_resamples, np.random.default_rng(cell_seed(seed, task, variant, shots)))
        low, high, _ = _interval(boot)
        # Never narrower than the Wilson interval of the pooled items: a bootstrap of identical answers
        # (0/n, n/n) collapses to one point, while n items cannot rule out a rate of about 3/n.
        wilson_low, wilson_high = wilson_interval(int(cell["correct"].sum()), len(cell))
        low, high = min(low, wilson_low), max(high, wilson_high)
        known = cell["truncated"].notna()
        rows.append(dict(task=task, variant=variant, shots=int(shots), n_seeds=len(seeds), n_items=len(cell),
                         accuracy=float(np.mean([g.mean() for g in groups])), ci_low=low, ci_high=high,
                         unparsed_rate=float(cell["answer"].isna().mean()),
                         truncated_rate=float(cell.loc[known, "truncated"].astype(bool).mean()) if known.any() else None))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    order = table["variant"].map(arm_rank)
    return table.assign(_order=order).sort_values(["shots", "task", "_order"], ignore_index=True).drop(columns="_order")


def _p_seeds(seed_means: list[float]) -> float | None:
    """One-sample t test of per-seed mean differences against 0; None when undefined (fewer than two
    seeds, or every seed's difference equal)."""
    if len(seed_means) < 2 or np.ptp(seed_means) == 0:
        return None
    p = float(scipy_stats.ttest_1samp(seed_means, 0.0).pvalue)
    return p if math.isfinite(p) else None


def _difference_row(task, shots, treatment, control, paired: pd.DataFrame, boot: np.ndarray,
                    seed_means: list[float]) -> dict:
    diffs = paired["treatment"].astype(float) - paired["control"].astype(float)
    treatment_only, control_only = int((diffs > 0).sum()), int((diffs < 0).sum())
    low, high, se = _interval(boot)
    if treatment_only + control_only == 0:
        # No item tells the arms apart, so every resample gives 0: the bootstrap says nothing. The arms
        # differ on at most the Wilson upper bound of 0 discordant items out of n, and so does their
        # accuracy; a detectable effect cannot be estimated without a paired SD.
        bound = wilson_interval(0, len(paired))[1]
        low, high, se = -bound, bound, None
    return dict(task=task, shots=int(shots), treatment=treatment, control=control,
                n_seeds=len(paired[["task", "seed"]].drop_duplicates()),  # pooled: task × seed runs
                n_items=len(paired), difference=None, ci_low=low, ci_high=high, se=se,
                paired_sd=float(diffs.std(ddof=1)) if len(diffs) > 1 else None,
                treatment_only=treatment_only, control_only=control_only,
                p_mcnemar=mcnemar_exact(treatment_only, control_only), p_seeds=_p_seeds(seed_means),
                mde=minimum_detectable_effect(se, ALPHA, POWER))


def differences(items: pd.DataFrame, treatment: str = "arte", control: str = "original",
                n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Treatment − control per task × shots and pooled over tasks (row task 'pooled': each task weighs
    the same), on items both arms answered within a seed. Columns: DIFFERENCE_COLUMNS (see the module
    docstring for the p-values and the minimum detectable effect)."""
    paired = paired_items(items, treatment, control, by=("task", "seed", "run_id"))
    rows = []
    for shots, by_shots in paired.groupby("shots", sort=True):
        task_boots, task_means, all_seed_means = [], [], []
        for task, cell in by_shots.groupby("task", sort=True):
            cell = cell.assign(diff=cell["treatment"].astype(float) - cell["control"].astype(float))
            _, groups = _seed_groups(cell, "diff")
            boot = hierarchical_bootstrap(groups, n_resamples,
                                          np.random.default_rng(cell_seed(seed, task, shots, treatment, control)))
            seed_means = [float(g.mean()) for g in groups]
            row = _difference_row(task, shots, treatment, control, cell, boot, seed_means)
            row["difference"] = float(np.mean(seed_means))
            rows.append(row)
            task_boots.append(boot)
            task_means.append(row["difference"])
            all_seed_means += seed_means
        if len(task_boots) > 1:
            pooled = _difference_row(POOLED, shots, treatment, control, by_shots, np.mean(task_boots, axis=0),
                                     all_seed_means)
            pooled["difference"] = float(np.mean(task_means))
            rows.append(pooled)
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def design_summary(table: pd.DataFrame, diffs: pd.DataFrame) -> dict:
    """What the design can detect: per shots, the pooled (or single task's) minimum detectable effect of
    treatment − control and the sizes behind it."""
    out = {}
    for shots, part in diffs.groupby("shots", sort=True):
        headline = part[part["task"] == POOLED]
        headline = headline if len(headline) else part
        row = headline.iloc[0]
        out[int(shots)] = dict(task=row["task"], mde=_number(row["mde"]), se=_number(row["se"]), n_items=int(row["n_items"]),
                               n_seeds=int(row["n_seeds"]), alpha=ALPHA, power=POWER)
    return out

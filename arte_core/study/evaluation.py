"""Evaluation statistics of one or more runs' stored answers: per arm (the evaluated student variant)
and number of shots, accuracy with its Wilson 95% interval and the unparsed and truncated rates; between
two arms on the same items, the discordant counts, McNemar's exact p and a seeded paired bootstrap
interval of the accuracy difference.

Input is a frame of evaluated items as `store.study.study_eval_items` returns it (run_id, variant,
shots, item_index, correct, answer, parse_mode, truncated); a missing answer is an unparsed item.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from arte_core.stats import mcnemar_exact, paired_bootstrap_ci, wilson_interval
from arte_core.store import Store
from arte_core.store.study import ITEM_COLUMNS, study_eval_items

# The arms in the order reports show them; any other variant follows, by name.
ARM_ORDER = ("untrained", "original", "arte")
# The comparisons between arms a run reports: each treatment against its control.
COMPARISONS = (("arte", "original"), ("arte", "untrained"), ("original", "untrained"))
N_RESAMPLES = 2000


def arm_rank(variant: str) -> tuple:
    return (ARM_ORDER.index(variant), "") if variant in ARM_ORDER else (len(ARM_ORDER), variant)


def cell_seed(seed: int, *key) -> list[int]:
    """A bootstrap seed per cell from the study's seed and the cell's name, so a cell's interval does not
    depend on which other cells were computed before it."""
    return [int(seed), zlib.crc32("|".join(map(str, key)).encode())]


def arm_accuracy(items: pd.DataFrame, by: tuple[str, ...] = ("run_id",)) -> pd.DataFrame:
    """One row per `by` × variant × shots: n, n_correct, accuracy, its Wilson 95% interval (ci_low,
    ci_high), unparsed_rate and truncated_rate (NaN where no item of the cell recorded truncation)."""
    keys = [*by, "variant", "shots"]
    columns = [*keys, "n", "n_correct", "accuracy", "ci_low", "ci_high", "unparsed_rate", "truncated_rate"]
    if items.empty:
        return pd.DataFrame(columns=columns)
    frame = items.assign(unparsed=items["answer"].isna(), truncated_known=items["truncated"].notna(),
                         truncated_true=items["truncated"].fillna(False).astype(bool))
    grouped = frame.groupby(keys, sort=False).agg(
        n=("correct", "size"), n_correct=("correct", "sum"), n_unparsed=("unparsed", "sum"),
        n_truncated=("truncated_true", "sum"), n_truncation_known=("truncated_known", "sum")).reset_index()
    grouped["n_correct"] = grouped["n_correct"].astype(int)
    grouped["accuracy"] = grouped["n_correct"] / grouped["n"]
    intervals = [wilson_interval(c, n) for c, n in zip(grouped["n_correct"], grouped["n"])]
    grouped["ci_low"] = [low for low, _ in intervals]
    grouped["ci_high"] = [high for _, high in intervals]
    grouped["unparsed_rate"] = grouped["n_unparsed"] / grouped["n"]
    known = grouped["n_truncation_known"].where(grouped["n_truncation_known"] > 0)
    grouped["truncated_rate"] = grouped["n_truncated"] / known
    grouped = grouped.sort_values(keys, key=lambda col: col.map(arm_rank) if col.name == "variant" else col,
                                  kind="stable", ignore_index=True)
    return grouped[columns]


def paired_items(items: pd.DataFrame, treatment: str, control: str,
                 by: tuple[str, ...] = ("run_id",)) -> pd.DataFrame:
    """The items both arms answered, one row each: the `by` keys, shots, item_index, `treatment` and
    `control` (whether each arm was right)."""
    keys = [*by, "shots", "item_index"]
    first = items.loc[items["variant"] == treatment, [*keys, "correct"]].rename(columns={"correct": "treatment"})
    second = items.loc[items["variant"] == control, [*keys, "correct"]].rename(columns={"correct": "control"})
    return first.merge(second, on=keys, how="inner").sort_values(keys, ignore_index=True)


def paired_comparison(treatment: np.ndarray, control: np.ndarray, n_resamples: int = N_RESAMPLES,
                      seed=0) -> dict:
    """Treatment − control on the same items: n, both accuracies, the difference with a paired bootstrap
    95% interval (items resampled with both answers), the discordant counts (treatment_only: only the
    treatment right; control_only: only the control right) and McNemar's exact two-sided p on them."""
    treatment, control = np.asarray(treatment, dtype=bool), np.asarray(control, dtype=bool)
    n = int(treatment.size)
    treatment_only = int(np.sum(treatment & ~control))
    control_only = int(np.sum(control & ~treatment))
    low, high = paired_bootstrap_ci(treatment, control, n_resamples, seed) if n else (None, None)
    return dict(n=n, treatment_accuracy=float(treatment.mean()) if n else None,
                control_accuracy=float(control.mean()) if n else None,
                difference=(treatment_only - control_only) / n if n else None, ci_low=low, ci_high=high,
                treatment_only=treatment_only, control_only=control_only,
                p_mcnemar=mcnemar_exact(treatment_only, control_only) if n else None)


def arm_comparisons(items: pd.DataFrame, comparisons=COMPARISONS, by: tuple[str, ...] = ("run_id",),
                    n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """`paired_comparison` for every `by` × shots cell and every (treatment, control) pair of arms that
    both answered items of the cell."""
    rows = []
    for treatment, control in comparisons:
        paired = paired_items(items, treatment, control, by)
        for key, cell in paired.groupby([*by, "shots"], sort=True):
            key = key if isinstance(key, tuple) else (key,)
            stats = paired_comparison(cell["treatment"].to_numpy(), cell["control"].to_numpy(), n_resamples,
                                      cell_seed(seed, *key, treatment, control))
            rows.append(dict(zip([*by, "shots"], key), treatment=treatment, control=control, **stats))
    return pd.DataFrame(rows)


def items_of_runs(store: Store, runs: list[dict]) -> pd.DataFrame:
    """Every evaluated item of `runs` (dicts with run_id, task, seed and student), each run read for its
    student, with the run's task, seed and student as columns (a run listed once per student gives each
    student's items)."""
    frames = []
    for run in runs:
        frame = study_eval_items(store, [run["run_id"]], run["student"])
        frames.append(frame.assign(task=run["task"], seed=int(run["seed"]), student=run["student"]))
    if not frames:
        return pd.DataFrame(columns=["task", "seed", "student", *ITEM_COLUMNS])
    return pd.concat(frames, ignore_index=True)

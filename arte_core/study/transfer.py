"""The transfer table of a study with several students (the paper's Table 5): does a teacher aligned to
one student teach another as well as its own aligned teacher does?

For students A and B, cell X→Y is student Y fine-tuned on the data the teacher aligned to X regenerated
('arte' when X is Y, the transfer arm 'from:X' otherwise), minus Y fine-tuned on the unaligned teacher's
data ('original'), on the same test items: the difference, its 95% interval (hierarchical bootstrap over
seeds, then items), McNemar's exact p and the minimum detectable effect, per task and pooled over tasks
(aggregate.differences). Beside it, per run, Spearman's ρ between the two students' ICL scores of the
shared drafts with its Fisher-z interval: a teacher tailored to one student can only suit another that
ranks the drafts alike.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

from arte_core.stages.distill import transfer_arm
from arte_core.store import Store
from arte_core.store.signals import student_comparison
from arte_core.study.aggregate import POOLED, arm_table, differences
from arte_core.study.evaluation import N_RESAMPLES

CONTROL = "original"


def teacher_arm(aligned_to: str, student: str) -> str:
    """The arm of `student` trained on the data of the teacher aligned to `aligned_to`."""
    return "arte" if aligned_to == student else transfer_arm(aligned_to)


def _clean(record: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
            for k, v in record.items()}


def transfer_cells(items: pd.DataFrame, students: list[str], n_resamples: int = N_RESAMPLES,
                   seed: int = 0) -> list[dict]:
    """One row per aligned-to × student × task (and 'pooled' over tasks) × shots: the arm, the difference
    against the student's original-teacher arm with its interval, p and minimum detectable effect, and
    both arms' accuracies on the paired items."""
    rows = []
    for student, aligned_to in itertools.product(students, students):
        own = items[items["student"] == student]
        arm = teacher_arm(aligned_to, student)
        for d in differences(own, arm, CONTROL, n_resamples, seed).to_dict(orient="records"):
            rows.append(_clean(dict(aligned_to=aligned_to, student=student, arm=arm, **d)))
    return rows


def score_correlations(store: Store, runs: list[dict], students: list[str]) -> list[dict]:
    """Per run and pair of students: Spearman's ρ of their ICL scores of the drafts both scored, its
    Fisher-z 95% interval and n."""
    rows = []
    for run in {(r["run_id"], r["task"], r["seed"]): r for r in runs}.values():
        for first, second in itertools.combinations(students, 2):
            c = student_comparison(store, run["run_id"], first, second)
            rows.append(_clean(dict(run_id=run["run_id"], task=run["task"], seed=run["seed"], student_a=first,
                                    student_b=second, spearman=c["spearman"], ci_low=c["ci_low"],
                                    ci_high=c["ci_high"], n=c["n"], score_name=c["score_name"])))
    return rows


def transfer_result(store: Store, items: pd.DataFrame, runs: list[dict], students: list[str],
                    n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
    """The transfer section of a study result: its students, the cells, every student's arms (accuracy
    per task × arm over seeds, as the study's arms table) and the draft-score correlations."""
    arms = []
    for student in students:
        table = arm_table(items[items["student"] == student], n_resamples, seed)
        arms += [_clean(dict(student=student, **r)) for r in table.to_dict(orient="records")]
    return dict(students=list(students), control=CONTROL, cells=transfer_cells(items, students, n_resamples, seed),
                arms=arms, correlations=score_correlations(store, runs, students))


def headline_cells(transfer: dict) -> list[dict]:
    """Per shots and aligned-to × student: the pooled row, or the task's row when the study has one task."""
    cells = transfer.get("cells", [])
    pooled = {(c["shots"], c["aligned_to"], c["student"]) for c in cells if c["task"] == POOLED}
    return [c for c in cells if c["task"] == POOLED or (c["shots"], c["aligned_to"], c["student"]) not in pooled]


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"


def transfer_table(transfer: dict | None) -> pd.DataFrame:
    """The table a person reads: one row per shots × aligned-to × student, with the difference against
    the student's original-teacher arm, its interval, p, n and the minimum detectable effect."""
    columns = ["shots", "teacher aligned to", "student", "arm", "vs original [95% CI]", "p McNemar", "n items",
               "MDE", "tasks"]
    rows = []
    for c in headline_cells(transfer or {}):
        rows.append({"shots": c["shots"], "teacher aligned to": c["aligned_to"], "student": c["student"],
                     "arm": c["arm"],
                     "vs original [95% CI]": f"{_fmt(c['difference'])} [{_fmt(c['ci_low'], 2)}, {_fmt(c['ci_high'], 2)}]",
                     "p McNemar": "—" if c["p_mcnemar"] is None else f"{c['p_mcnemar']:.3g}",
                     "n items": c["n_items"], "MDE": "—" if c["mde"] is None else f"{c['mde']:.3f}",
                     "tasks": c["task"]})
    return pd.DataFrame(rows, columns=columns)


def correlation_lines(transfer: dict | None) -> list[str]:
    out = []
    for c in (transfer or {}).get("correlations", []):
        rho = "undefined" if c["spearman"] is None else f"{c['spearman']:+.2f}"
        ci = "" if c["ci_low"] is None else f" [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
        out.append(f"{c['task']} seed {c['seed']}: Spearman ρ of {c['student_a']} and {c['student_b']}'s draft "
                   f"scores ({c['score_name']}) {rho}{ci}, n = {c['n']} drafts")
    return out


def transfer_lines(transfer: dict | None) -> list[str]:
    """Headline lines for the terminal: each transfer cell, then the draft-score correlations."""
    if not transfer:
        return []
    lines = [f"{r['shots']}-shot {r['teacher aligned to']} → {r['student']}: {r['arm']} − original "
             f"{r['vs original [95% CI]']} p={r['p McNemar']} n={r['n items']}"
             for r in transfer_table(transfer).to_dict(orient="records")]
    return lines + correlation_lines(transfer)


def transfer_markdown(transfer: dict | None) -> list[str]:
    """The study.md section: the transfer table and the correlations (nothing without a transfer)."""
    if not transfer:
        return []
    table = transfer_table(transfer)
    header = "| " + " | ".join(table.columns) + " |\n|" + " --- |" * len(table.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return ["## Transfer: a teacher aligned to one student teaching another (paper Table 5)", "",
            "Each row: the student fine-tuned on the data of the teacher aligned to the named student, minus the "
            "same student fine-tuned on the unaligned teacher's data, on the same test items (95% hierarchical "
            "bootstrap over seeds and items; McNemar's exact p; MDE at α 0.05 and 80% power).", "",
            header, *body, "", "Do the students rank the drafts alike?", "",
            *[f"- {line}" for line in correlation_lines(transfer)], ""]

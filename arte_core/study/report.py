"""The study's result and its files: `study_result` gathers every statistic of a set of runs into one
JSON-able dict; `write_study` writes it as study.json, study.md (the tables a person reads) and
study.html (a plotly figure: accuracy per arm × task with 95% error bars, n and the unparsed and
truncated rates in each bar). The studio's Study view reads the same dict (`load_study`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from arte_core.study.aggregate import ALPHA, LEVEL, POOLED, POWER, arm_table, design_summary, differences
from arte_core.study.evaluation import N_RESAMPLES, arm_accuracy, arm_comparisons, arm_rank
from arte_core.study.transfer import transfer_markdown

FILES = ("study.md", "study.json", "study.html")
ARM_COLOURS = {"untrained": "#9e9e9e", "original": "#1f77b4", "arte": "#d62728"}


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts with None for missing values (JSON has no NaN)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
             for k, v in row.items()} for row in frame.to_dict(orient="records")]


def study_result(items: pd.DataFrame, runs: list[dict], treatment: str = "arte", control: str = "original",
                 n_resamples: int = N_RESAMPLES, seed: int = 0, **about) -> dict:
    """Every statistic of the study on `items` (evaluated items with task and seed; see aggregate.py):
    `arms` (task × arm × shots over seeds), `differences` (treatment − control per task and pooled),
    `design` (the minimum detectable effect), `per_run` (each run's arms with Wilson intervals) and
    `per_run_comparisons` (McNemar and paired bootstrap per run). `about` (config, study id…) is kept."""
    arms = arm_table(items, n_resamples, seed)
    diffs = differences(items, treatment, control, n_resamples, seed)
    per_run = arm_accuracy(items, by=("task", "seed", "run_id"))
    return dict(about, runs=runs, treatment=treatment, control=control, tasks=sorted(items["task"].unique().tolist()),
                seeds=sorted(int(s) for s in items["seed"].unique()), n_resamples=n_resamples, bootstrap_seed=seed,
                alpha=ALPHA, power=POWER, level=LEVEL, arms=_records(arms), differences=_records(diffs),
                design={str(k): v for k, v in design_summary(arms, diffs).items()}, per_run=_records(per_run),
                per_run_comparisons=_records(arm_comparisons(items, by=("task", "seed", "run_id"),
                                                             n_resamples=n_resamples, seed=seed)))


def load_study(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "study.json").read_text(encoding="utf-8"))


def arms_frame(result: dict) -> pd.DataFrame:
    return pd.DataFrame(result["arms"])


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def display_table(result: dict) -> pd.DataFrame:
    """Arms × tasks as shown: one row per shots × arm, one column per task, each cell
    'accuracy [low, high] n=…' (n: items over all seeds), then the treatment − control row."""
    cells: dict[tuple, dict] = {}
    for r in arms_frame(result).itertuples():
        cells.setdefault((r.shots, r.variant), {"shots": r.shots, "arm": r.variant})[r.task] = (
            f"{_fmt(r.accuracy)} [{_fmt(r.ci_low, 2)}, {_fmt(r.ci_high, 2)}] n={r.n_items}")
    for d in result["differences"]:
        label = f"{d['treatment']} − {d['control']}"
        cells.setdefault((d["shots"], label), {"shots": d["shots"], "arm": label})[d["task"]] = (
            f"{_fmt(d['difference'])} [{_fmt(d['ci_low'], 2)}, {_fmt(d['ci_high'], 2)}] "
            f"p={_p(d['p_mcnemar'])} n={d['n_items']}")
    pooled = [POOLED] if any(d["task"] == POOLED for d in result["differences"]) else []
    rows = sorted(cells.values(), key=lambda row: (row["shots"], arm_rank(row["arm"])))
    return pd.DataFrame(rows, columns=["shots", "arm", *result["tasks"], *pooled]).fillna("")


def study_figure(result: dict) -> go.Figure:
    """Accuracy per arm × task, one panel per number of shots, with hierarchical-bootstrap 95% error bars;
    each bar's text gives its accuracy, n and unparsed and truncated rates."""
    arms = arms_frame(result)
    shots_values = sorted(arms["shots"].unique()) if len(arms) else [0]
    fig = make_subplots(rows=len(shots_values), cols=1, shared_xaxes=True,
                        subplot_titles=[f"{k}-shot" for k in shots_values])
    for row, shots in enumerate(shots_values, start=1):
        for variant, part in arms[arms["shots"] == shots].groupby("variant", sort=False):
            text = [f"{r.accuracy:.2f}<br>n={r.n_items}<br>unparsed {r.unparsed_rate:.0%}<br>cut off "
                    + ("—" if r.truncated_rate is None or pd.isna(r.truncated_rate) else f"{r.truncated_rate:.0%}")
                    for r in part.itertuples()]
            fig.add_trace(go.Bar(x=part["task"], y=part["accuracy"], name=variant, legendgroup=variant,
                                 showlegend=row == 1, marker_color=ARM_COLOURS.get(variant), text=text,
                                 textposition="inside",
                                 error_y=dict(type="data", array=part["ci_high"] - part["accuracy"],
                                              arrayminus=part["accuracy"] - part["ci_low"], visible=True)),
                          row=row, col=1)
        fig.update_yaxes(title_text="accuracy", range=[0, 1], row=row, col=1)
    if result.get("study_id") == "store":  # the studio's pooled view: each run is one replicate of its task
        about = "mean over runs; error bars: 95% hierarchical bootstrap over runs and items; n = items over all runs"
    else:
        about = (f"mean over seeds {', '.join(map(str, result.get('seeds', [])))}; error bars: 95% hierarchical "
                 "bootstrap over seeds and items; n = items over all seeds")
    fig.update_layout(barmode="group", height=320 * len(shots_values) + 120, template="plotly_white",
                      title=dict(text=f"Study: accuracy per arm and task<br><sup>{about}</sup>"))
    return fig


def _design_lines(result: dict) -> list[str]:
    lines = []
    for shots, d in result["design"].items():
        where = "pooled over tasks" if d["task"] == POOLED else f"on {d['task']}"
        sizes = f"{d['n_items']} paired items over {d['n_seeds']} task × seed runs"
        if d["mde"] is None:
            lines.append(f"- {shots}-shot, {where}: minimum detectable {result['treatment']} − {result['control']} "
                         f"difference undefined: no item tells the arms apart ({sizes}).")
            continue
        lines.append(f"- {shots}-shot, {where}: minimum detectable {result['treatment']} − {result['control']} "
                     f"difference {_fmt(d['mde'])} (a fraction: 0.10 is 10 points) at α {d['alpha']} and "
                     f"{d['power']:.0%} power = 2.80 × SE {_fmt(d['se'], 4)} (hierarchical bootstrap), {sizes}.")
    return lines


def study_markdown(result: dict) -> str:
    table = display_table(result)
    header = "| " + " | ".join(map(str, table.columns)) + " |\n|" + " --- |" * len(table.columns)
    body = "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False))
    diffs = pd.DataFrame(result["differences"])
    diff_lines = [f"| {d['task']} | {d['shots']} | {_fmt(d['difference'])} | [{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}] "
                  f"| {d['treatment_only']} / {d['control_only']} | {_p(d['p_mcnemar'])} | {_p(d['p_seeds'])} "
                  f"| {_fmt(d['mde'])} | {d['n_items']} | {d['n_seeds']} |" for d in result["differences"]]
    comparison_lines = [f"| {c['task']} | {c['seed']} | {c['shots']} | {c['treatment']} − {c['control']} | "
                        f"{_fmt(c['difference'])} | [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}] | "
                        f"{c['treatment_only']} / {c['control_only']} | {_p(c['p_mcnemar'])} | {c['n']} |"
                        for c in result["per_run_comparisons"]]
    run_lines = [f"| {r['task']} | {r['seed']} | `{r['run_id']}` | {r['variant']} | {r['shots']} | "
                 f"{_fmt(r['accuracy'])} | [{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}] | {r['n']} | "
                 f"{_fmt(r['unparsed_rate'], 2)} | {_fmt(r['truncated_rate'], 2)} |" for r in result["per_run"]]
    parts = [
        f"# Study {result.get('study_id', '')}".rstrip(),
        "",
        f"Student `{result.get('student', '?')}`; tasks {', '.join(result['tasks'])}; seeds "
        f"{', '.join(map(str, result['seeds']))}. Each cell: mean accuracy over seeds with its 95% interval "
        f"(hierarchical bootstrap: seeds, then items within seed; {result['n_resamples']} resamples, seed "
        f"{result['bootstrap_seed']}) and n, the items over all seeds. The {result['treatment']} − "
        f"{result['control']} rows: the paired difference, its interval, McNemar's exact p on the discordant items.",
        "",
        header, body, "",
        "## What this design can detect", "", *_design_lines(result), "",
        f"## {result['treatment']} − {result['control']}", "",
        "| task | shots | difference | 95% CI | discordant (treatment / control right) | p McNemar | p seeds (t) | MDE | n items | n runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *diff_lines, "",
        "`p seeds`: a one-sample t test of the per-seed mean differences (the seeds as the unit); McNemar treats "
        "the trained students as fixed and tests the items.", "",
        "## Per run (Wilson 95% intervals)", "",
        "| task | seed | run | arm | shots | accuracy | 95% CI | n | unparsed | truncated |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *run_lines, "",
        "## Between arms per run (paired bootstrap 95% CI, McNemar exact p)", "",
        "| task | seed | shots | comparison | difference | 95% CI | discordant | p McNemar | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *comparison_lines, "",
    ]
    parts += transfer_markdown(result.get("transfer"))
    if diffs.empty:
        parts.insert(parts.index("## What this design can detect"), f"No run has both {result['treatment']} and "
                     f"{result['control']} evaluations: no difference to report.\n")
    return "\n".join(parts)


def write_study(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write study.json, study.md and study.html into `out_dir` (created); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in FILES}
    paths["study.json"].write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    paths["study.md"].write_text(study_markdown(result), encoding="utf-8")
    study_figure(result).write_html(paths["study.html"], include_plotlyjs=True, full_html=True)
    return paths

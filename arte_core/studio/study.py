"""The Study tab's handlers: the study of this store's evaluated runs, or one that `arte study` wrote
(a `study-*` folder with study.json under the runs folder), as a table of arms × tasks (accuracy with its
95% interval and n; ARTE − original with its interval and p), the plotly figure and a summary that states
the design's minimum detectable effect.

The store's study pools every evaluated run, each one replicate of its task (each run read for its own
student), and is computed once per state of the store (its write count).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from arte_core.errors import ArteError
from arte_core.store import Store
from arte_core.store.study import evaluated_runs, evaluated_students
from arte_core.studio.plots import empty_figure
from arte_core.study.evaluation import items_of_runs
from arte_core.study.report import display_table, load_study, study_figure, study_result
from arte_core.study.transfer import correlation_lines, transfer_result, transfer_table

FROM_STORE = "this store's evaluated runs"
NO_STUDY = ("No evaluated run yet: run `arte study --config C --seeds 0 1 2` (or `arte run`), then refresh. "
            "A study needs runs whose evaluate stage is done.")
_cache: dict[tuple, dict] = {}


def study_folders(runs_dir: str | Path) -> list[str]:
    """`study-*` folders under `runs_dir` holding a study.json, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob("study-*/study.json") if p.is_file()]
    return [str(p) for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def study_choices(runs_dir: str | Path) -> list[str]:
    return [FROM_STORE, *study_folders(runs_dir)]


def _run_seed(config_yaml: str) -> int:
    data = yaml.safe_load(config_yaml) or {}
    return int(data.get("seed", 0) or 0)


def store_study(store: Store) -> dict | None:
    """The study of every evaluated run in the store (None when there is none), reused while the store
    is unchanged."""
    key = (id(store), store.path, store.write_count)
    if key not in _cache:
        runs = [dict(run_id=r["run_id"], task=r["task"], seed=_run_seed(r["config_yaml"]), student=r["student"])
                for r in evaluated_runs(store)]
        items = items_of_runs(store, _as_replicates(runs))
        _cache.clear()
        _cache[key] = None if items.empty else study_result(items, runs, study_id="store",
                                                            student=", ".join(sorted({r["student"] for r in runs})))
        if _cache[key] is not None:
            _cache[key]["transfer"] = store_transfer(store, runs)
    return _cache[key]


def _as_replicates(runs: list[dict]) -> list[dict]:
    """The runs with `seed` replaced by the run's number within its task: the bootstrap resamples seeds, and
    two runs of one task and seed (the demo loop and a study cell, say) are two replicates, not one."""
    numbered, seen = [], {}
    for run in runs:
        seen[run["task"]] = seen.get(run["task"], -1) + 1
        numbered.append(dict(run, seed=seen[run["task"]]))
    return numbered


def store_transfer(store: Store, runs: list[dict]) -> dict | None:
    """The transfer table of the runs where several students were evaluated (None when no run has two):
    every such run read once per student."""
    students_of = evaluated_students(store)
    shared = [r for r in runs if len(students_of.get(r["run_id"], [])) > 1]
    if not shared:
        return None
    students = list(dict.fromkeys(s for r in shared for s in students_of[r["run_id"]]))
    per_student = [dict(r, student=s) for r in shared for s in students_of[r["run_id"]]]
    return transfer_result(store, items_of_runs(store, per_student), per_student, students)


def _summary(result: dict) -> str:
    runs = result["runs"]
    head = f"**{len(runs)} runs**: tasks {html.escape(', '.join(result['tasks']))}"
    student = html.escape(str(result.get("student", "?")))
    if result.get("study_id") == "store":
        lines = [f"{head}; student {student}. This view pools every evaluated run of the store, each run one "
                 f"replicate of its task (their seeds: {', '.join(str(r['seed']) for r in runs)}). Cells: mean "
                 "accuracy over runs [95% interval: hierarchical bootstrap over runs, then items] and n (items over "
                 "all runs). Pick a `study-*` folder to see one study's runs alone."]
    else:
        lines = [f"{head} × seeds {', '.join(map(str, result['seeds']))}; student {student}. Cells: mean accuracy "
                 "over seeds [95% interval: hierarchical bootstrap over seeds, then items] and n (items over all "
                 "seeds)."]
    for shots, d in result["design"].items():
        where = "pooled over tasks" if d["task"] == "pooled" else f"on {html.escape(d['task'])}"
        mde = "undefined (no item tells the arms apart)" if d["mde"] is None else f"{d['mde']:.3f}"
        lines.append(f"- {shots}-shot, {where}: the smallest {result['treatment']} − {result['control']} difference "
                     f"this design detects at α {d['alpha']} with {d['power']:.0%} power is **{mde}** "
                     f"({d['n_items']} paired items, {d['n_seeds']} runs).")
    if not result["design"]:
        lines.append(f"- No run has both {result['treatment']} and {result['control']} evaluations yet: no difference.")
    return "\n".join(lines)


def study_view(store: Store, runs_dir: str | Path, choice: Any = None) -> dict:
    """The Study tab: `summary` (Markdown), `table` (arms × tasks as shown), `arms` (the numbers behind
    it: accuracy, ci_low, ci_high, n_items, n_seeds, unparsed and truncated rates), `figure`, and with
    several students `transfer` (the transfer table) and `transfer_note` (what it shows; the students'
    draft-score correlations)."""
    choice = choice or FROM_STORE
    if choice == FROM_STORE:
        result = store_study(store)
    elif str(choice) in study_folders(runs_dir):  # only studies under the studio's runs folder are read
        result = load_study(choice)
    else:
        raise ArteError(f"no study at {choice}; pick one from the list (folders runs/study-* with a study.json).")
    if result is None:
        return dict(summary=NO_STUDY, table=pd.DataFrame(columns=["shots", "arm"]), arms=pd.DataFrame(),
                    figure=empty_figure("no evaluated run yet"), transfer=transfer_table(None), transfer_note="")
    return dict(summary=_summary(result), table=display_table(result), arms=pd.DataFrame(result["arms"]).round(4),
                figure=study_figure(result), transfer=transfer_table(result.get("transfer")),
                transfer_note=_transfer_note(result.get("transfer")))


def _transfer_note(transfer: dict | None) -> str:
    """What the transfer table shows, and whether the students rank the drafts alike."""
    if not transfer:
        return ("No transfer table: this study has one student. `arte study --students A B …` aligns a teacher to "
                "each student and trains each student on both teachers' data (the paper's Table 5).")
    lines = [f"**Transfer** between {', '.join(html.escape(s) for s in transfer['students'])}: each row is the "
             "student fine-tuned on the data of the teacher aligned to the named student, minus the same student "
             "fine-tuned on the unaligned teacher's data, on the same items (95% interval, McNemar's p, n)."]
    lines += [f"- {html.escape(line)}" for line in correlation_lines(transfer)]
    return "\n".join(lines)

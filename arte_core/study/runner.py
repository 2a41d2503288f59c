"""`arte study`: the loop once per task × seed, then the study's report.

Each cell runs `pipeline.run_stages` over `arte run`'s stages (and influence when the pairs rank by it) with a copy of the config whose task and
seed are set, so a cell is an ordinary run (its own run id) and a rerun skips what is stored: stages
already done are skipped by the pipeline, units inside a stage by the stage. A tqdm bar counts cells
and estimates the time left from the cells that did work (a cell found done takes no time and would
make the estimate meaningless). The report reads each run's evaluations for the run's student.

With several students (`--students A B`), every cell runs the loop for each student in one run (the
students share the teacher's drafts): first every stage up to SFT for each student, so each has its own
aligned teacher and regenerated arms, then SFT and evaluation with `distill.transfer_from` naming the
other students, so each student also trains on every other student's aligned teacher's data. The report
then adds the transfer table (study/transfer.py): A→A, A→B, B→B, B→A against each student's own
original-teacher arm, and whether the students rank the drafts alike.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from arte_core.config import RunConfig, config_from_dict
from arte_core.errors import ArteError
from arte_core.pipeline import run_stages
from arte_core.progress import Reporter
from arte_core.stages.registry import RUN_ORDER, STAGES
from arte_core.store import Store
from arte_core.study.evaluation import N_RESAMPLES, items_of_runs
from arte_core.study.report import study_result, write_study
from arte_core.study.transfer import transfer_lines, transfer_result


@dataclass
class Cell:
    """One task × seed of a study and the run that holds it."""

    task: str
    seed: int
    config: RunConfig

    @property
    def run_id(self) -> str:
        return self.config.resolved_run_name


def cell_config(config: RunConfig, task: str, seed: int) -> RunConfig:
    """`config` with its task and seed set, validated. A named run gets the task and seed appended (one
    name for every cell would make them one run); a task folder that lacks the task is dropped (the task
    is then a built-in one, as `arte run --task` does)."""
    data = config.to_dict()
    data.update(task=task, seed=int(seed))
    if config.run_name:
        data["run_name"] = f"{config.run_name}-{task}-s{seed}"
    if task != config.task and config.task_dir and not (Path(config.task_dir) / "tasks" / f"{task}.json").exists():
        data["task_dir"] = None
    return config_from_dict(data)


def study_cells(config: RunConfig, seeds: list[int], tasks: list[str] | None = None) -> list[Cell]:
    """Every task × seed in order (tasks outer); the config's own task when no task is named."""
    if not seeds:
        raise ArteError("a study needs at least one seed: `arte study --seeds 0 1 2`.")
    tasks = list(dict.fromkeys(tasks or [config.task]))
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    return [Cell(task, seed, cell_config(config, task, seed)) for task in tasks for seed in seeds]


def study_id(config: RunConfig, tasks: list[str], seeds: list[int], students: list[str] | None = None) -> str:
    """An 8-character hash of the study: the config (without task, seed and run name, which the cells
    set) and the tasks and seeds (and the students, when there are several)."""
    identity = {k: v for k, v in config.to_dict().items() if k not in ("task", "seed", "run_name", "runs_dir")}
    identity.update(tasks=list(tasks), seeds=[int(s) for s in seeds])
    if students and len(students) > 1:
        identity["students"] = list(students)
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]


def student_config(config: RunConfig, student: str, students: list[str]) -> RunConfig:
    """The cell's config for one of its students; with several, its SFT adds a transfer arm per other student."""
    data = config.to_dict()
    data["student"] = student
    data["distill"]["transfer_from"] = [s for s in students if s != student] if len(students) > 1 else []
    return config_from_dict(data)


# The stages that need every student's aligned teacher when the students' data is crossed.
SFT_STAGES = ("distill", "evaluate")


def study_stages(config: RunConfig) -> list[str]:
    """`arte run`'s stages, plus the optional influence stage (in registry order) when the pairs rank
    drafts by it: a study cell must make every input its pairs need."""
    wanted = set(RUN_ORDER) | ({"influence"} if config.pairs.signal in ("influence", "both") else set())
    return [name for name in STAGES if name in wanted]


def time_left(seconds_worked: list[float], cells_left: int) -> str:
    """The estimate shown beside the bar: mean seconds of the cells that did work × cells left."""
    if not cells_left:
        return "done"
    if not seconds_worked:
        return "estimate after the first computed cell"
    left = sum(seconds_worked) / len(seconds_worked) * cells_left
    return f"~{int(left // 3600)}h{int(left % 3600 // 60):02d}m left" if left >= 3600 else f"~{int(left // 60)}m{int(left % 60):02d}s left"


def run_cell(cell: Cell, students: list[str], store: Store, reporter: Reporter) -> None:
    """The loop of one cell for each student: one student runs the stages in order; several run every
    stage before SFT for each student first, then SFT and evaluation (with the transfer arms)."""
    configs = [student_config(cell.config, s, students) for s in students]
    stages = study_stages(cell.config)
    if len(configs) == 1:
        run_stages(configs[0], store, stages, reporter)
        return
    for config in configs:
        run_stages(config, store, [s for s in stages if s not in SFT_STAGES], reporter)
    for config in configs:
        run_stages(config, store, [s for s in stages if s in SFT_STAGES], reporter)


def run_cells(cells: list[Cell], store: Store, reporter: Reporter, show_bar: bool = True,
              students: list[str] | None = None) -> list[dict]:
    """Run the loop for every cell and student (stages already done are skipped); returns per cell and
    student its task, seed, run id, student, the cell's seconds and whether the cell computed anything."""
    students = students or ([cells[0].config.student] if cells else [])
    done, worked = [], []
    with tqdm(total=len(cells), desc="study cells (task × seed)", unit="cell", disable=not show_bar,
              file=sys.stderr, dynamic_ncols=True) as bar:
        for index, cell in enumerate(cells):
            bar.set_postfix_str(f"{cell.task} seed {cell.seed}; {time_left(worked, len(cells) - index)}")
            before = set(store.stages_done(cell.run_id))
            started = time.time()
            reporter.emit(study_cell=f"{cell.task}:{cell.seed}", index=index, total=len(cells))
            run_cell(cell, students, store, reporter)
            seconds = time.time() - started
            computed = set(store.stages_done(cell.run_id)) != before
            if computed:
                worked.append(seconds)
            done += [dict(task=cell.task, seed=cell.seed, run_id=cell.run_id, student=student,
                          seconds=round(seconds, 1), computed=computed) for student in students]
            bar.update(1)
            bar.set_postfix_str(time_left(worked, len(cells) - index - 1))
    return done


def study_students(config: RunConfig, students: list[str] | None) -> list[str]:
    """The study's students, the config's own first when none is named; each once."""
    students = list(dict.fromkeys(students or [config.student]))
    if any(not str(s).strip() for s in students):
        raise ArteError("a student name is empty; name registry models, folders or Hub ids: `--students A B`.")
    return students


def run_study(config: RunConfig, store: Store, seeds: list[int], tasks: list[str] | None = None,
              out_dir: str | Path | None = None, reporter: Reporter | None = None, show_bar: bool = True,
              n_resamples: int = N_RESAMPLES, students: list[str] | None = None) -> tuple[dict, dict[str, Path]]:
    """Every cell's loop (for each student), then the study's statistics over the cells' runs, written to
    `out_dir` (default: runs_dir/study-<hash>). The arms table is the first student's; with several
    students the result adds the transfer table. Returns the result and the written files."""
    students = study_students(config, students)
    config = student_config(config, students[0], [students[0]])
    cells = study_cells(config, seeds, tasks)
    tasks_run = list(dict.fromkeys(c.task for c in cells))
    seeds_run = list(dict.fromkeys(c.seed for c in cells))
    sid = study_id(config, tasks_run, seeds_run, students)
    out = Path(out_dir) if out_dir else Path(config.runs_dir) / f"study-{sid}"
    runs = run_cells(cells, store, reporter or Reporter(None, show_bar=show_bar), show_bar, students)
    items = items_of_runs(store, runs)
    if items.empty:
        raise ArteError("the study's runs hold no evaluated items; check `arte status` for the evaluate stage.")
    own = items[items["student"] == students[0]]
    result = study_result(own, [r for r in runs if r["student"] == students[0]], n_resamples=n_resamples,
                          seed=config.seed, study_id=sid, student=students[0], config=config.to_dict())
    if len(students) > 1:
        result["transfer"] = transfer_result(store, items, runs, students, n_resamples, config.seed)
    return result, write_study(result, out)


def cmd_study(config: RunConfig, db: str, seeds: list[int], tasks: list[str] | None, out: str | None,
              events: str | None = None, quiet: bool = False, students: list[str] | None = None) -> int:
    """`arte study`: run the study and print where its report is and its headline numbers."""
    reporter = Reporter(events, show_bar=not quiet)
    with Store(db) as store:
        result, paths = run_study(config, store, seeds, tasks, out, reporter, show_bar=not quiet, students=students)
    print(f"study {result['study_id']}: {len(result['runs'])} runs ({', '.join(result['tasks'])} × seeds "
          f"{', '.join(map(str, result['seeds']))}). Report: {paths['study.md'].parent}")
    for d in result["differences"]:
        ci = "" if d["ci_low"] is None else f" [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"
        mde = "—" if d["mde"] is None else f"{d['mde']:.3f}"
        print(f"  {d['shots']}-shot {d['task']:24} {d['treatment']} − {d['control']} {d['difference']:+.3f}{ci} "
              f"p={d['p_mcnemar']:.3g} n={d['n_items']} minimum detectable {mde}")
    for line in transfer_lines(result.get("transfer")):
        print("  " + line)
    return 0

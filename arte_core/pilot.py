"""`arte pilot`: where can this student learn? Its few-shot accuracy per built-in task and difficulty level.

For each built-in task and level, the student answers `n_items` generated questions greedily with the
project's own k-shot chain-of-thought prompt (prompts.few_shot_prompt over the task's seed exemplars), the
answer budget of the task (as the evaluate stage derives it) and the project's answer reading
(tasks/answers.read_answer). Each cell records the accuracy with its Wilson 95% interval, the task's
baseline on the same items (the majority label's share on label tasks, the most common target's share on
open answers), the unparsed and truncated rates and the seconds per item.

A level is *in the zone* (for educators, the student's zone of proximal development) when its interval
lies clearly above the baseline and clearly below the ceiling: lower bound > baseline and upper bound <
PILOT_CEILING. There a preference signal can tell drafts apart; below it every draft scores chance, above
it every draft scores full marks.

Cells go into the store's pilot_results table (store/pilot.py); a cell already stored is not measured
again unless asked (`redo`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from dataclasses import dataclass

from arte_core.config.run import DTYPES, ENGINES, RunConfig
from arte_core.errors import ArteError
from arte_core.progress import Reporter
from arte_core.stats import wilson_interval
from arte_core.tasks.answers import is_label_task, read_answer
from arte_core.tasks.base import Example, Task
from arte_core.tasks.builtin import SPEC_OF, SPECS, build_task
from arte_core.tasks.generators.spec import TaskSpec

PILOT_CEILING = 0.95  # above this a student gets (nearly) every draft right: no signal left to rank drafts
PILOT_HELP = ("the student's few-shot accuracy per built-in task and difficulty level, with Wilson intervals, "
              "against the task's baseline; marks the levels in its zone (clearly above baseline, below 0.95)")


@dataclass(frozen=True)
class PilotSettings:
    """How the pilot asks: the student, the cells, and the decoding of its answers."""

    student: str
    tasks: tuple[str, ...] = tuple(spec.name for spec in SPECS)
    levels: tuple[str, ...] = ()  # "3" (every task with that level), "navigate:4"; () = every level of each task
    n_items: int = 60
    shots: int = 3
    seed: int = 0
    backend: str = "transformers"
    dtype: str = "float32"
    engine: str = "fast"
    batch_size: int = 8
    max_new_tokens: int = 0  # 0 = from the task, as the evaluate stage does
    trust_remote_code: bool = False
    redo: bool = False


def in_zone(ci_low: float, ci_high: float, baseline: float, ceiling: float = PILOT_CEILING) -> bool:
    """Whether a level is in the student's zone: the interval clears the baseline and stays below the ceiling."""
    return bool(ci_low > baseline and ci_high < ceiling)


def baseline_share(task: Task, targets: list[str]) -> tuple[float, str]:
    """(share, kind): the share of `targets` a student scores by always giving the most common one; kind is
    'majority label' on label tasks and 'most common target' on open answers."""
    if not targets:
        raise ArteError("a baseline needs at least one item.")
    counts = Counter(task.normalise(t) for t in targets)
    kind = "majority label" if is_label_task(task.answer_format, task.labels) else "most common target"
    return counts.most_common(1)[0][1] / len(targets), kind


def planned_levels(spec: TaskSpec, requested: tuple[str, ...]) -> list[int]:
    """The levels of `spec` the pilot measures: every level when none is requested, else the requested
    ones that apply to it ("L" applies to each task with a level L, "task:L" to that task; 0 = default)."""
    if not requested:
        return list(spec.levels)
    chosen: list[int] = []
    for token in requested:
        name, _, level_text = token.rpartition(":")
        if name and name not in SPEC_OF:
            raise ArteError(f"--levels {token}: unknown task '{name}'; built-in tasks: {', '.join(SPEC_OF)}.")
        if not level_text.strip().isdigit():
            raise ArteError(f"--levels {token}: a level is a whole number (0 = the task's default), as in 3 or navigate:4.")
        if name and name != spec.name:
            continue
        level = int(level_text) or spec.default_level
        if level in spec.levels and level not in chosen:
            chosen.append(level)
        elif name and level not in spec.levels:
            spec.check_level(level)  # raises, naming the task's levels
    return sorted(chosen)


def pilot_items(spec: TaskSpec, level: int, settings: PilotSettings) -> tuple[Task, list[Example]]:
    """The task at `level` and its first `n_items` pool questions: the same questions a run's pool at this
    seed and level starts with. A level whose question space cannot fill a run's pool still gets a pilot
    when it holds `n_items` questions."""
    try:
        task = build_task(spec, settings.seed, level)
    except ArteError:
        task = build_task(spec, settings.seed, level, n_examples=settings.n_items)  # raises when even that is too many
    return task, task.pool()[:settings.n_items]


def measure_cell(generator, task: Task, items: list[Example], settings: PilotSettings, reporter: Reporter) -> dict:
    """The student's answers to `items`, read and counted: accuracy, interval, baseline, rates, time."""
    from arte_core.models import SamplingParams
    from arte_core.prompts import STUDENT_STOP, few_shot_prompt
    from arte_core.stages.score import student_max_new_tokens

    if settings.shots > len(task.exemplars):
        raise ArteError(f"--shots {settings.shots}: task '{task.name}' has {len(task.exemplars)} seed exemplars.")
    exemplars = task.exemplars[:settings.shots]
    prompts = [few_shot_prompt(task, item.input, exemplars) for item in items]
    budget = student_max_new_tokens(settings.max_new_tokens, task, generator)
    params = SamplingParams(max_new_tokens=budget, temperature=0.0, stop=STUDENT_STOP)
    level = task.extra["difficulty_level"]
    started = time.perf_counter()
    with reporter.bar(f"pilot {task.name} level {level}", len(items)) as bar:
        outputs = generator.generate(prompts, params, batch_size=settings.batch_size, progress=bar.update)
    seconds = time.perf_counter() - started
    readings = [read_answer(task.answer_format, out.text, task.labels, finished=out.stopped) for out in outputs]
    n_correct = sum(task.is_correct(r.answer, item.target) for r, item in zip(readings, items))
    n = len(items)
    ci_low, ci_high = wilson_interval(n_correct, n)
    baseline, kind = baseline_share(task, [item.target for item in items])
    return dict(n_items=n, n_correct=n_correct, accuracy=n_correct / n, ci_low=ci_low, ci_high=ci_high,
                baseline=baseline, baseline_kind=kind, n_unparsed=sum(r.answer is None for r in readings),
                n_truncated=sum(bool(r.truncated) for r in readings), max_new_tokens=budget,
                seconds_per_item=seconds / n, in_zone=in_zone(ci_low, ci_high, baseline))


def run_pilot(store, settings: PilotSettings, reporter: Reporter | None = None) -> list[dict]:
    """Measure every planned cell not yet stored (all of them with `redo`); returns the cells of this
    pilot, stored and new, in task and level order."""
    from arte_core.context import ModelCache
    from arte_core.store import utcnow
    from arte_core.store.pilot import pilot_result, save_pilot_result

    reporter = reporter or Reporter(None)
    unknown = [name for name in settings.tasks if name not in SPEC_OF]
    if unknown:
        raise ArteError(f"--tasks: {', '.join(unknown)} is not a built-in task; the pilot measures built-in tasks "
                        f"({', '.join(SPEC_OF)}), whose difficulty it can vary.")
    if settings.n_items < 1 or settings.shots < 0:
        raise ArteError("--n-items must be at least 1 and --shots at least 0.")
    plan = [(SPEC_OF[name], level) for name in settings.tasks for level in planned_levels(SPEC_OF[name], settings.levels)]
    if not plan:
        raise ArteError(f"--levels {' '.join(settings.levels)} names no level of the tasks {', '.join(settings.tasks)}.")
    config = RunConfig(student=settings.student, backend=settings.backend,
                       trust_remote_code=settings.trust_remote_code)
    models = ModelCache(config)
    cells = []
    for spec, level in plan:
        key = dict(student=settings.student, task=spec.name, level=level, shots=settings.shots,
                   seed=settings.seed, n_items=settings.n_items)
        stored = None if settings.redo else pilot_result(store, **key)
        if stored:
            cells.append(stored)
            continue
        try:
            task, items = pilot_items(spec, level, settings)
        except ArteError as exc:
            reporter.log(f"pilot: {spec.name} level {level} skipped: {exc}")
            continue
        if len(items) < settings.n_items:  # duplicates up to case left the pool short
            reporter.log(f"pilot: {spec.name} level {level} skipped: {len(items)} distinct questions, fewer than "
                         f"--n-items {settings.n_items}.")
            continue
        generator = models.generator(settings.student, settings.dtype, settings.engine)
        measured = measure_cell(generator, task, items, settings, reporter)
        row = {**key, **measured, "default_level": spec.default_level, "level_meaning": spec.level_meaning,
               "created_at": utcnow()}
        save_pilot_result(store, row)
        cells.append(pilot_result(store, **key))
        reporter.log(f"pilot: {spec.name} level {level}: accuracy {measured['accuracy']:.3f} "
                     f"[{measured['ci_low']:.2f}, {measured['ci_high']:.2f}] n={measured['n_items']}, "
                     f"{measured['baseline_kind']} {measured['baseline']:.3f}, "
                     f"{measured['seconds_per_item']:.1f} s/item{', in the zone' if measured['in_zone'] else ''}")
    return cells


def _rate(count: int, n: int) -> str:
    return f"{count / n:.0%}" if n else "-"


def format_table(cells: list[dict]) -> str:
    """The pilot as a Markdown table, with a closing line on the zone (saying so plainly when it is empty)."""
    head = ("| task | level | n | accuracy (Wilson 95%) | baseline | unparsed | truncated | s/item | in zone |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [head]
    for c in cells:
        default = " (default)" if c["level"] == c["default_level"] else ""
        lines.append(f"| {c['task']} | {c['level']}{default} | {c['n_items']} | {c['accuracy']:.3f} "
                     f"[{c['ci_low']:.2f}, {c['ci_high']:.2f}] | {c['baseline_kind']} {c['baseline']:.3f} | "
                     f"{_rate(c['n_unparsed'], c['n_items'])} | {_rate(c['n_truncated'], c['n_items'])} | "
                     f"{c['seconds_per_item']:.1f} | {'yes' if c['in_zone'] else 'no'} |")
    zone = [f"{c['task']} level {c['level']}" for c in cells if c["in_zone"]]
    if zone:
        lines.append(f"\nIn the zone (lower bound above baseline, upper bound below {PILOT_CEILING}): {', '.join(zone)}.")
    elif cells:
        lines.append(f"\nNo level is in the zone: no interval lies both above its baseline and below {PILOT_CEILING}.")
    return "\n".join(lines)


# -- the command line (arte_core/cli.py registers the subcommand) --------------------------------------


def add_pilot_arguments(parser) -> None:
    """The flags of `arte pilot`."""
    eval_defaults = RunConfig().eval
    parser.add_argument("--student", required=True, help="the student model: registry name, local folder or Hub id")
    parser.add_argument("--tasks", nargs="+", default=[spec.name for spec in SPECS],
                        help=f"built-in tasks to measure (default: all of {', '.join(SPEC_OF)})")
    parser.add_argument("--levels", nargs="+", default=[],
                        help="levels to measure: L (each task that has level L; 0 = its default) or TASK:L; "
                             "default every level of each task (`arte config --help-fields` lists them under task_difficulty)")
    parser.add_argument("--n-items", type=int, default=60, help="questions per task and level (default 60)")
    parser.add_argument("--shots", type=int, default=3, help="chain-of-thought exemplars in each prompt (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated questions (default 0: the first questions of a run's pool)")
    parser.add_argument("--db", default=os.environ.get("ARTE_DB", "arte.duckdb"), help="DuckDB store file the results go into")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"], help="generation backend")
    parser.add_argument("--dtype", default=eval_defaults.dtype, choices=list(DTYPES), help="student weights")
    parser.add_argument("--engine", default=eval_defaults.engine, choices=list(ENGINES), help="generation engine, as eval.engine")
    parser.add_argument("--batch-size", type=int, default=eval_defaults.batch_size, help="answers generated together")
    parser.add_argument("--max-new-tokens", type=int, default=0, help="token limit of one answer (0 = from the task, as eval.max_new_tokens)")
    parser.add_argument("--redo", action="store_true", help="measure again the cells already stored")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_pilot(args: argparse.Namespace) -> int:
    """Run the pilot into the store and print its table."""
    from arte_core.store import Store

    settings = PilotSettings(student=args.student, tasks=tuple(args.tasks), levels=tuple(str(v) for v in args.levels),
                             n_items=args.n_items, shots=args.shots, seed=args.seed, backend=args.backend,
                             dtype=args.dtype, engine=args.engine, batch_size=args.batch_size,
                             max_new_tokens=args.max_new_tokens, redo=args.redo)
    with Store(args.db) as store:
        cells = run_pilot(store, settings, Reporter(None, show_bar=not args.quiet))
    print(f"pilot of {settings.student}, {settings.shots}-shot, seed {settings.seed} (store: {args.db})")
    print(format_table(cells))
    return 0


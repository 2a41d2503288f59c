"""`arte`: the headless command line. `arte run` does the whole loop; each stage also runs alone.

Errors a user can fix print one line and exit with status 2; the store is left as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from arte_core.config import PAIR_SIGNALS, PAIR_STYLES, RunConfig, load_config
from arte_core.errors import ArteError

DEFAULT_DB = "arte.duckdb"
STAGE_HELP = {
    "run": "the whole loop: elicit → score → pairs → align → regenerate → distill → evaluate",
    "elicit": "step 1: the teacher writes draft questions and rationales",
    "score": "step 2: one-shot ICL accuracy of every draft for the student",
    "influence": "optional signal: Montessori-Instruct's local data influence of every draft",
    "pairs": "step 3: question and rationale preference pairs",
    "align": "step 4: DPO of the teacher on the pairs (LoRA)",
    "regenerate": "step 5a: the aligned teacher writes the tailored data",
    "distill": "step 5b: fine-tune the student on original-teacher and ARTE data",
    "evaluate": "zero-/few-shot accuracy of untrained and fine-tuned students",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="run config YAML (default: the built-in demo config)")
    p.add_argument("--db", default=os.environ.get("ARTE_DB", DEFAULT_DB), help="DuckDB store file")
    p.add_argument("--task", help="task name (overrides the config)")
    p.add_argument("--task-dir", help="folder in the BBH layout holding the task (overrides the config)")
    p.add_argument("--run-name", help="run name (default: task name + config hash)")
    p.add_argument("--runs-dir", help="folder for adapters, checkpoints and logs (overrides the config)")
    p.add_argument("--student", help="student model (overrides the config)")
    p.add_argument("--teacher", help="teacher model (overrides the config)")
    p.add_argument("--signal", choices=PAIR_SIGNALS, help="preference signal pairs are built from (overrides the config)")
    p.add_argument("--pair-style", choices=PAIR_STYLES, help="how pairs are formed from the scores (overrides the config)")
    p.add_argument("--events", help="append JSON-lines progress events to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arte", description="ARTE Studio: tailor a teacher's data to a student.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in STAGE_HELP.items():
        _common(sub.add_parser(name, help=help_text, description=help_text))
    status = sub.add_parser("status", help="row counts per stage for every run in a store")
    status.add_argument("--db", default=os.environ.get("ARTE_DB", DEFAULT_DB))
    status.add_argument("--run-name")
    status.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("config", help="print the effective config as YAML")
    _common(show)
    return parser


def demo_config_path() -> Path:
    """The demo config, shipped at the top of the repository (`assets/configs/demo.yaml`)."""
    return Path(__file__).resolve().parents[1] / "assets" / "configs" / "demo.yaml"


def effective_config(args: argparse.Namespace) -> RunConfig:
    """The config file (or the demo config) with command-line overrides applied."""
    config = load_config(args.config or demo_config_path())
    if args.task_dir:
        config.task_dir = args.task_dir
    if args.task:
        config.task = args.task
        if not args.task_dir and config.task_dir and not (Path(config.task_dir) / "tasks" / f"{args.task}.json").exists():
            config.task_dir = None
    for attr in ("run_name", "runs_dir", "student", "teacher"):
        value = getattr(args, attr)
        if value:
            setattr(config, attr, value)
    if args.signal:
        config.pairs.signal = args.signal
    if args.pair_style:
        config.pairs.style = args.pair_style
    return config


def cmd_status(args: argparse.Namespace) -> int:
    from arte_core.store import Store

    if not Path(args.db).exists():
        raise ArteError(f"no store at {args.db}; run `arte run --db {args.db}` first.")
    with Store(args.db, read_only=True) as store:
        status = store.status(args.run_name)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        for run_id, counts in status.items():
            print(run_id)
            for key, value in counts.items():
                print(f"  {key:24} {value}")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from arte_core.pipeline import run_stages
    from arte_core.stages.registry import RUN_ORDER
    from arte_core.progress import Reporter
    from arte_core.store import Store

    config = effective_config(args)
    stages = RUN_ORDER if args.command == "run" else [args.command]
    with Store(args.db) as store:
        reporter = Reporter(args.events, show_bar=not args.quiet) if args.events else None
        if reporter is None and args.quiet:
            reporter = Reporter(None, show_bar=False)
        ctx = run_stages(config, store, stages, reporter)
        counts = store.status(ctx.run_id)[ctx.run_id]
        evaluations = store.evaluations(ctx.run_id)
    print(f"run {ctx.run_id}: done ({', '.join(stages)}). Store: {args.db}; run folder: {ctx.run_dir}")
    print(json.dumps({k: v for k, v in counts.items() if k != "stages_done"}))
    for row in evaluations:
        print(f"  {row['variant']:10} {row['shots']}-shot accuracy {row['accuracy']:.3f} "
              f"({row['n_correct']}/{row['n_items']}, unparsed {row['n_unparsed']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "status":
            return cmd_status(args)
        if args.command == "config":
            print(effective_config(args).to_yaml())
            return 0
        return cmd_stage(args)
    except ArteError as exc:
        print(f"arte: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("arte: interrupted; rerun the same command to continue where it stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

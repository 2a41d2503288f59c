"""`arte`: the headless command line. `arte run` does the whole loop; each stage also runs alone.

Every config field is a flag (`--align.learning_rate 1e-4`, `--eval.shots [0,3]`), derived from the
config dataclasses by jsonargparse. The config file (`--config`, else the demo config) gives the flags'
defaults, and the result passes through the same `validate` as YAML files and the studio form.
`arte config --help-fields` lists every field. Errors a user can fix print one line and exit with
status 2; the store is left as it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from jsonargparse import ArgumentError, ArgumentParser

from arte_core.config import (RunConfig, config_from_dict, demo_config_path, field_specs, help_fields_text,
                              load_config)
from arte_core.errors import ArteError
from arte_core.stages.registry import RUN_ORDER, STAGES, run_help

__all__ = ["build_parser", "demo_config_path", "effective_config", "main"]

DEFAULT_DB = "arte.duckdb"
# Spellings from before every field was a flag; they stay as aliases of the fields' own flags.
FLAG_ALIASES = {"task_dir": "--task-dir", "run_name": "--run-name", "runs_dir": "--runs-dir",
                "pairs.signal": "--signal", "pairs.style": "--pair-style"}
SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))
STUDY_HELP = ("the loop per task × seed (resumable), then arms × tasks with 95% intervals over seeds and items, "
              "ARTE − original with its p, and the design's minimum detectable effect")
HEALTH_HELP = ("signal health of one run × student: is each preference signal measuring what it claims "
               "(ok / warn / bad, each with its number, interval, n and what to change)")


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _config_parser(help_text: str) -> ArgumentParser:
    """A stage's (or `config`'s) parser: the file and store flags, then one flag per config field."""
    parser = ArgumentParser(description=help_text, exit_on_error=False)
    parser.add_argument("--config", help="run config YAML (default: the built-in demo config); its values are the defaults of the field flags")
    parser.add_argument("--db", default=os.environ.get("ARTE_DB", DEFAULT_DB), help="DuckDB store file")
    parser.add_argument("--events", help="append JSON-lines progress events to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_class_arguments(RunConfig, nested_key=None)
    specs = {spec.path: spec for spec in field_specs(RunConfig)}
    for action in parser._actions:  # help text and constraints from the fields; the old flag spellings
        spec = specs.get(action.dest)
        if spec is None:
            continue
        allowed = spec.constraint.describe()
        action.help = spec.help + (f" Allowed: {allowed}." if allowed else "")
        alias = FLAG_ALIASES.get(action.dest)
        if alias:
            action.option_strings.append(alias)
            parser._option_string_actions[alias] = action
    return parser


class ArteParser(ArgumentParser):
    """`arte`'s parser. `parse_args` reads the config file first so that its values are the field
    flags' defaults, and returns a flat namespace: the command, its non-field flags, `fields` (the
    config mapping with the command-line values in) and `base` (the file's config)."""

    def parse_args(self, args=None, namespace=None):  # noqa: D102
        argv = list(sys.argv[1:] if args is None else args)
        parsed = self._parse(argv)
        command = parsed.command
        own = parsed[command]
        out = argparse.Namespace(command=command)
        if command == "status":
            out.__dict__.update(db=own.db, run_name=own.run_name, json=own.json)
            return out
        if command == "health":
            out.__dict__.update(db=own.db, run=own.run, student=own.student, json=own.json)
            return out
        if command == "pilot":  # its own flags (arte_core/pilot.py), no run config
            out.__dict__.update(own.as_dict())
            return out
        base = None
        if not (command == "config" and own.help_fields):
            base = load_config(own.config or demo_config_path())
            self.command_parsers[command].set_defaults(_flat(base.to_dict()))
            own = self._parse(argv)[command]
        values = own.as_dict()
        out.__dict__.update(config=own.config, db=own.db, events=own.events, quiet=own.quiet,
                            help_fields=bool(values.get("help_fields")), base=base,
                            fields={name: values[name] for name in SECTIONS})
        if command == "study":
            out.__dict__.update(seeds=own.seeds, tasks=own.tasks, out=own.out, students=own.students)
        return out

    def _parse(self, argv: list[str]):
        try:
            return super().parse_args(argv)
        except ArgumentError as exc:
            raise ArteError(" ".join(str(exc).split())) from None


def build_parser() -> ArteParser:
    parser = ArteParser(prog="arte", description="ARTE Studio: tailor a teacher's data to a student.",
                        exit_on_error=False)
    commands = parser.add_subcommands(dest="command", required=True)
    parser.command_parsers = {}
    helps = {"run": run_help(), **{name: stage.help for name, stage in STAGES.items()}}
    for name, help_text in helps.items():
        parser.command_parsers[name] = _config_parser(help_text)
        commands.add_subcommand(name, parser.command_parsers[name], help=help_text)
    show = _config_parser("print the effective config as YAML")
    show.add_argument("--help-fields", action="store_true", help="list every config field with its type, default, allowed values and help")
    parser.command_parsers["config"] = show
    commands.add_subcommand("config", show, help="print the effective config as YAML (--help-fields: every field)")
    status = ArgumentParser(description="row counts per stage for every run in a store", exit_on_error=False)
    status.add_argument("--db", default=os.environ.get("ARTE_DB", DEFAULT_DB), help="DuckDB store file")
    status.add_argument("--run-name", help="only this run")
    status.add_argument("--json", action="store_true", help="print JSON")
    commands.add_subcommand("status", status, help="row counts per stage for every run in a store")
    health = ArgumentParser(description=HEALTH_HELP, exit_on_error=False)
    health.add_argument("--db", default=os.environ.get("ARTE_DB", DEFAULT_DB), help="DuckDB store file")
    health.add_argument("--run", required=True, help="the run's name (`arte status` lists them)")
    health.add_argument("--student", help="the student whose preferences to audit (default: the run's student)")
    health.add_argument("--json", action="store_true", help="print the lines as JSON")
    commands.add_subcommand("health", health, help=HEALTH_HELP)
    from arte_core.pilot import PILOT_HELP, add_pilot_arguments

    pilot = ArgumentParser(description=PILOT_HELP, exit_on_error=False)
    add_pilot_arguments(pilot)
    commands.add_subcommand("pilot", pilot, help=PILOT_HELP)
    study = _config_parser(STUDY_HELP)
    study.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds to run each task with")
    study.add_argument("--tasks", nargs="+", help="the tasks to run (default: the config's task)")
    study.add_argument("--out", help="folder for study.md, study.json and study.html (default: runs_dir/study-HASH)")
    study.add_argument("--students", nargs="+", help="two or more students for the transfer table (paper Table 5): "
                       "each gets its own aligned teacher and also trains on every other student's aligned "
                       "teacher's data (default: the config's student alone)")
    parser.command_parsers["study"] = study
    commands.add_subcommand("study", study, help=STUDY_HELP)
    return parser


def effective_config(args: argparse.Namespace) -> RunConfig:
    """The config file (or the demo config) with command-line values in, validated."""
    data = dict(args.fields)
    base: RunConfig = args.base
    task_dir_given = data["task_dir"] != base.task_dir
    if data["task"] != base.task and not task_dir_given and base.task_dir \
            and not (Path(base.task_dir) / "tasks" / f"{data['task']}.json").exists():
        data["task_dir"] = None  # another task than the file's, and not in the file's task folder
    return config_from_dict(data)


def cmd_status(args: argparse.Namespace) -> int:
    from arte_core.pipeline import run_status
    from arte_core.store import Store

    if not os.path.exists(args.db):  # False, not OSError, for a path the system cannot hold
        raise ArteError(f"no store at {args.db}; run `arte run --db {args.db}` first.")
    with Store(args.db, read_only=True) as store:
        status = run_status(store, args.run_name)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        for run_id, counts in status.items():
            print(run_id)
            for key, value in counts.items():
                print(f"  {key:24} {value}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from arte_core.health import TITLES, signal_health
    from arte_core.store import Store

    if not os.path.exists(args.db):
        raise ArteError(f"no store at {args.db}; run `arte run --db {args.db}` first.")
    with Store(args.db, read_only=True) as store:
        student = args.student or store.run(args.run)["student"]
        lines = signal_health(store, args.run, student)
    if args.json:
        print(json.dumps([line.to_dict() for line in lines], indent=2, ensure_ascii=False))
        return 0
    print(f"signal health of {student} in run {args.run}")
    for line in lines:
        value = "" if line.value is None else f"{line.value:.3g}"
        ci = "" if line.ci_low is None else f" [{line.ci_low:.2f}, {line.ci_high:.2f}]"
        n = "" if line.n is None else f" n={line.n}"
        print(f"  {line.status:4}  {TITLES[line.key]:36} {value}{ci}{n}\n        {line.message}")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from arte_core.pipeline import run_stages, run_status
    from arte_core.progress import Reporter
    from arte_core.store import Store

    config = effective_config(args)
    stages = RUN_ORDER if args.command == "run" else [args.command]
    with Store(args.db) as store:
        reporter = Reporter(args.events, show_bar=not args.quiet) if args.events else None
        if reporter is None and args.quiet:
            reporter = Reporter(None, show_bar=False)
        ctx = run_stages(config, store, stages, reporter)
        counts = run_status(store, ctx.run_id)[ctx.run_id]
        evaluations = store.evaluations(ctx.run_id, config.student)
    print(f"run {ctx.run_id}: done ({', '.join(stages)}). Store: {args.db}; run folder: {ctx.run_dir}")
    print(json.dumps({k: v for k, v in counts.items() if k != "stages_done"}))
    for row in evaluations:
        print(f"  {row['variant']:10} {row['shots']}-shot accuracy {row['accuracy']:.3f} "
              f"({row['n_correct']}/{row['n_items']}, unparsed {row['n_unparsed']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "health":
            return cmd_health(args)
        if args.command == "pilot":
            from arte_core.pilot import cmd_pilot

            return cmd_pilot(args)
        if args.command == "study":
            from arte_core.study.runner import cmd_study

            return cmd_study(effective_config(args), args.db, args.seeds, args.tasks, args.out, args.events, args.quiet,
                             args.students)
        if args.command == "config":
            print(help_fields_text() if args.help_fields else effective_config(args).to_yaml())
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

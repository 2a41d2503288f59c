"""The run config: every field's constraint is applied the same way to YAML files, the studio's form
(`config_from_dict`) and command-line flags; old layouts still load; run ids do not move."""

import dataclasses
import math
import re
import typing

import pytest
import yaml

from arte_core.cli import build_parser, effective_config, main
from arte_core.config import (LR_SCHEDULERS, MOVED_FIELDS, OPTIMIZERS, RunConfig, check_section, config_from_dict,
                              demo_config_path, field_choices, field_specs, load_config, validate)
from arte_core.errors import ArteError

SPECS = field_specs(RunConfig)
NUMERIC = [s for s in SPECS if s.is_number]
CHOICES = [s for s in SPECS if s.constraint.choices is not None]


def _leaf_paths(cls=RunConfig, prefix=""):
    """Every leaf field, read from the dataclasses themselves (not from field_specs)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_paths(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


def _nested(path: str, value) -> dict:
    head, _, rest = path.partition(".")
    return {head: value} if not rest else {head: {rest: value}}


def _is_int(spec) -> bool:
    hint = spec.type
    if typing.get_origin(hint) is list:
        (hint,) = typing.get_args(hint)
    return hint is int


def _bad_values(spec) -> list:
    """Values just outside the field's bounds (every numeric field has a minimum: tested below)."""
    rule, step = spec.constraint, (1 if _is_int(spec) else 0.5)
    bad = [rule.minimum if rule.exclusive_minimum else rule.minimum - step]
    if rule.maximum is not None:
        bad.append(rule.maximum if rule.exclusive_maximum else rule.maximum + step)
    if _is_int(spec):
        bad = [int(b) for b in bad]
    return [[b] if typing.get_origin(spec.type) is list else b for b in bad]


def _edge_values(spec) -> list:
    """The inclusive bounds themselves, which must be accepted."""
    rule, out = spec.constraint, []
    if not rule.exclusive_minimum:
        out.append(rule.minimum)
    if rule.maximum is not None and not rule.exclusive_maximum:
        out.append(rule.maximum)
    out = [int(v) if _is_int(spec) else float(v) for v in out]
    return [[v] if typing.get_origin(spec.type) is list else v for v in out]


BAD = [(spec.path, value) for spec in NUMERIC for value in _bad_values(spec)]


def test_run_ids_do_not_move():
    # Computed before the config was restructured: stored runs and assets/demo/runs.parquet use them.
    # The default's id moved once, on purpose: eval.n_test's default went from 200 to 300 (issue 16); with
    # n_test 200 set, the default config keeps its old id.
    assert RunConfig().fingerprint() == "86f695b7"
    assert config_from_dict({"eval": {"n_test": 200}}).fingerprint() == "3378f0ae"
    # The demo's id moved once, on purpose: its test split grew from 24 to 300 items (issue 16).
    assert load_config(demo_config_path()).fingerprint() == "7ae54dc0"
    assert load_config(demo_config_path()).resolved_run_name == "boolean_expressions-7ae54dc0"
    old_demo = load_config(demo_config_path())
    old_demo.eval.n_test = 24
    assert old_demo.fingerprint() == "fccdeae4"  # tests/data/demo_schema1's run


def test_field_specs_cover_every_dataclass_field():
    assert [s.path for s in SPECS] == list(_leaf_paths())
    assert all(s.help for s in SPECS), [s.path for s in SPECS if not s.help]


def test_every_numeric_field_is_bounded():
    assert len(NUMERIC) > 40
    unbounded = [s.path for s in NUMERIC if s.constraint.minimum is None]
    assert not unbounded


def test_defaults_and_the_demo_config_are_valid():
    validate(RunConfig())
    load_config(demo_config_path())


@pytest.mark.parametrize("path, value", BAD, ids=[f"{p}={v}" for p, v in BAD])
def test_out_of_range_value_is_refused_from_yaml_and_the_form(path, value, tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(_nested(path, value)))
    shown = value[0] if isinstance(value, list) else value
    with pytest.raises(ArteError, match=rf"config field '{path}' (is|has) {re.escape(str(shown))}; .*(at least|greater than|at most|less than)") as err:
        load_config(file)
    assert str(file) in str(err.value)
    with pytest.raises(ArteError, match=rf"config field '{path}'"):
        config_from_dict(_nested(path, value))  # what the studio's Runs form calls


@pytest.mark.parametrize("path, value", BAD, ids=[f"{p}={v}" for p, v in BAD])
def test_out_of_range_value_is_refused_from_the_command_line(path, value, capsys):
    flag_value = f"[{value[0]}]" if isinstance(value, list) else str(value)
    assert main(["config", f"--{path}", flag_value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("arte: error: ") and captured.err.count("\n") == 1
    assert f"'{path}'" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("spec", NUMERIC, ids=[s.path for s in NUMERIC])
def test_values_on_an_inclusive_bound_are_accepted(spec):
    for value in _edge_values(spec):
        config = config_from_dict(_nested(spec.path, value))
        section, _, name = spec.path.rpartition(".")
        assert getattr(getattr(config, section) if section else config, name) == value


@pytest.mark.parametrize("path", [s.path for s in NUMERIC if s.type is float])
def test_nan_and_infinity_are_refused(path):
    for value in (math.nan, math.inf):
        with pytest.raises(ArteError, match=rf"'{path}' is {value}; it must be a finite number"):
            config_from_dict(_nested(path, value))


@pytest.mark.parametrize("spec", CHOICES, ids=[s.path for s in CHOICES])
def test_a_value_outside_the_choices_is_refused_naming_what_is_allowed(spec, capsys):
    value = ["nope"] if typing.get_origin(spec.type) is list else "nope"
    with pytest.raises(ArteError) as err:
        config_from_dict(_nested(spec.path, value))
    message = str(err.value)
    assert f"'{spec.path}'" in message and "'nope'" in message
    assert all(str(c) in message for c in spec.constraint.choices)
    assert main(["config", f"--{spec.path}", "[nope]" if isinstance(value, list) else "nope"]) == 2
    err_text = capsys.readouterr().err
    assert f"'{spec.path}'" in err_text and spec.constraint.choices[0] in err_text


def test_list_fields_check_emptiness_and_repeats():
    with pytest.raises(ArteError, match="'elicit.techniques' is empty"):
        config_from_dict({"elicit": {"techniques": []}})
    with pytest.raises(ArteError, match="'elicit.techniques' is .*each item may appear once"):
        config_from_dict({"elicit": {"techniques": ["common_sense", "common_sense"]}})
    with pytest.raises(ArteError, match=r"'eval.shots' has -1; for each item it must be at least 0"):
        config_from_dict({"eval": {"shots": [0, -1]}})


def test_text_fields_and_run_names():
    with pytest.raises(ArteError, match="'teacher' is ''; it must not be empty"):
        config_from_dict({"teacher": " "[:0]})
    with pytest.raises(ArteError, match="'run_name' is '../x'; it must be a plain folder name"):
        config_from_dict({"run_name": "../x"})
    assert config_from_dict({"run_name": "my-run_1"}).run_name == "my-run_1"


def test_values_set_in_code_are_checked_too():
    config = RunConfig()
    config.score.max_new_tokens = -5
    with pytest.raises(ArteError, match=r"^config field 'score.max_new_tokens' is -5; it must be at least 0\.$"):
        validate(config)
    config = RunConfig()
    config.align.save_steps = 2.5
    with pytest.raises(ArteError, match="'align.save_steps' must be of type int"):
        validate(config)
    section = RunConfig().influence
    section.warmup_fraction = 1.5
    with pytest.raises(ArteError, match="'influence.warmup_fraction' is 1.5; it must be at least 0 and at most 1"):
        check_section("influence", section)


def test_choices_are_declared_once_and_read_back():
    from arte_core.config import BACKENDS, DTYPES, PAIR_SIGNALS
    from arte_core.models import BACKENDS as model_backends
    from arte_core.models.hf import _DTYPES

    assert field_choices("pairs.signal") is PAIR_SIGNALS
    assert field_choices("backend") is BACKENDS is model_backends
    assert tuple(_DTYPES) == DTYPES == field_choices("score.dtype") == field_choices("eval.dtype")
    with pytest.raises(KeyError):
        field_choices("align.learning_rate")


def test_training_choices_are_names_transformers_knows():
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    assert set(LR_SCHEDULERS) <= {s.value for s in SchedulerType}
    assert set(OPTIMIZERS) <= {o.value for o in OptimizerNames}


OLD_YAML = """
task: boolean_expressions
distill:
  n_examples: 5
  question_temperature: 0.3
  rationale_temperature: 0.2
  learning_rate: 1.0e-4
"""


def test_old_yaml_with_regeneration_fields_in_distill_loads_into_regenerate(tmp_path):
    file = tmp_path / "old.yaml"
    file.write_text(OLD_YAML)
    config = load_config(file)
    assert (config.regenerate.n_examples, config.regenerate.question_temperature,
            config.regenerate.rationale_temperature) == (5, 0.3, 0.2)
    assert config.distill.learning_rate == 1e-4
    assert not any(hasattr(config.distill, old.split(".")[1]) for old in MOVED_FIELDS)
    assert "question_temperature" not in yaml.safe_load(config.to_yaml())["distill"]
    assert load_config(demo_config_path()).regenerate.question_temperature == 0.7  # the demo's old layout


def test_an_old_field_that_disagrees_with_its_new_place_is_refused():
    with pytest.raises(ArteError, match="'distill.question_temperature' .* and 'regenerate.question_temperature' disagree"):
        config_from_dict({"distill": {"question_temperature": 0.3}, "regenerate": {"question_temperature": 0.5}})
    same = config_from_dict({"distill": {"question_temperature": 0.3}, "regenerate": {"question_temperature": 0.3}})
    assert same.regenerate.question_temperature == 0.3


def test_old_style_stored_config_yaml_round_trips():
    old = RunConfig().to_dict()
    regenerate = old.pop("regenerate")
    old["distill"].update(regenerate)  # how a run stored before the regenerate section looks
    config = config_from_dict(old)
    assert config == RunConfig() and config.fingerprint() == RunConfig().fingerprint()


def test_hard_coded_training_settings_are_fields_that_reach_the_trainer(tmp_path):
    from arte_core.training import common_args

    d = RunConfig().distill
    assert (d.save_steps, d.lr_scheduler, d.optim, d.per_device_batch_size, d.lora_alpha) == (50, "cosine", "adamw_torch", 4, 0)
    args = common_args(tmp_path, n_examples=10, learning_rate=1e-4, epochs=1.0, warmup_ratio=0.1, per_device_batch_size=4,
                       batch_size=2, scheduler="linear", optim="sgd", save_steps=7, seed=0)
    assert (args["lr_scheduler_type"], args["optim"], args["save_steps"]) == ("linear", "sgd", 7)
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (2, 1)


def test_eval_has_its_own_format_engine_and_dtype():
    config = config_from_dict({"score": {"engine": "batched", "icl_format": "chat"}})
    assert (config.eval.engine, config.eval.icl_format, config.eval.dtype) == ("fast", "completion", "float32")


# -- the command line --------------------------------------------------------------------------------


def _config_from_cli(capsys, *flags) -> dict:
    assert main(["config", *flags]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_every_field_is_a_flag():
    for name in ("run", "score", "config"):
        flags = build_parser().command_parsers[name]._option_string_actions
        assert [p for p in _leaf_paths() if f"--{p}" not in flags] == []


def test_a_learning_rate_on_the_command_line_reaches_the_config(capsys):
    data = _config_from_cli(capsys, "--align.learning_rate", "3e-4", "--eval.shots", "[1,2]",
                            "--distill.use_lora", "false", "--regenerate.question_temperature", "0.4")
    assert data["align"]["learning_rate"] == 3e-4 and data["eval"]["shots"] == [1, 2]
    assert data["distill"]["use_lora"] is False and data["regenerate"]["question_temperature"] == 0.4
    # the rest comes from the demo config, not from the dataclass defaults
    assert data["score"]["n_pref"] == 12 and data["distill"]["learning_rate"] == 1e-4
    args = build_parser().parse_args(["align", "--align.learning_rate", "2e-4"])
    assert effective_config(args).align.learning_rate == 2e-4


def test_command_line_values_override_the_config_file(tmp_path, capsys):
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump({"score": {"max_new_tokens": 33}, "align": {"learning_rate": 1e-3}}))
    data = _config_from_cli(capsys, "--config", str(file), "--align.learning_rate", "1e-5")
    assert data["score"]["max_new_tokens"] == 33 and data["align"]["learning_rate"] == 1e-5


def test_the_old_flag_spellings_still_work(tmp_path, capsys):
    data = _config_from_cli(capsys, "--signal", "both", "--pair-style", "montessori", "--run-name", "r1",
                            "--runs-dir", str(tmp_path), "--task-dir", str(tmp_path), "--student", "s", "--teacher", "t")
    assert (data["pairs"]["signal"], data["pairs"]["style"], data["run_name"]) == ("both", "montessori", "r1")
    assert data["runs_dir"] == data["task_dir"] == str(tmp_path) and (data["student"], data["teacher"]) == ("s", "t")
    args = build_parser().parse_args(["pairs", "--signal", "influence", "--db", "x.duckdb", "--events", "e.jsonl", "--quiet"])
    assert (args.db, args.events, args.quiet, args.command) == ("x.duckdb", "e.jsonl", True, "pairs")
    assert effective_config(args).pairs.signal == "influence"


def test_a_value_of_the_wrong_type_and_an_unknown_flag_exit_2_on_one_line(capsys):
    for flags in (["--score.max_new_tokens", "abc"], ["--score.temprature", "1"]):
        assert main(["config", *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("arte: error: ") and err.count("\n") == 1
    assert main(["config", "--score.max_new_tokens", "abc"]) == 2
    assert "score.max_new_tokens" in capsys.readouterr().err


def test_help_fields_lists_every_field_with_its_help(capsys):
    assert main(["config", "--help-fields"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and not line.startswith("    ")]
    assert listed == list(_leaf_paths())
    for spec in SPECS:
        assert spec.help in out
    assert "align.learning_rate  (float; default 0.0005; greater than 0 and at most 1)" in out
    assert "pairs.signal  (str; default \"icl\"; one of icl, influence, both)" in out


def test_stage_subcommands_come_from_the_registry(capsys):
    from arte_core.stages.registry import STAGES, run_help

    parsers = build_parser().command_parsers
    # Besides one subcommand per stage: the whole loop, the config listing and the study (all take a run config).
    assert set(STAGES) | {"run", "config", "study"} == set(parsers)
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in [*STAGES, "pilot", "study"]) and "elicit → score" in run_help()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    from arte_core.jobs import JobManager
    from arte_core.store import Store

    folder = tmp_path_factory.mktemp("runs-form")
    store = Store(folder / "studio.duckdb")
    yield JobManager(store, folder / "runs")
    store.close()


@pytest.mark.parametrize("path, value", BAD, ids=[f"{p}={v}" for p, v in BAD])
def test_out_of_range_value_is_refused_from_the_runs_form_and_nothing_launches(path, value, jobs):
    from arte_core.studio.runs import launch_job

    form = yaml.safe_dump(_nested(path, value))  # the YAML box of the Runs tab
    with pytest.raises(ArteError, match=rf"config field '{path}'"):
        launch_job(jobs, False, form, "pairs", who="tester")
    assert jobs.jobs() == []

def test_every_shipped_config_loads_and_validates():
    # the demo, and the paper-scale GPU config docs/results.md names
    configs = sorted((demo_config_path().parent).glob("*.yaml"))
    assert {c.name for c in configs} >= {"demo.yaml", "paper_gpu.yaml", "study.yaml"}
    for path in configs:
        config = load_config(path)
        assert config.resolved_run_name.startswith(config.task), path
    paper = load_config(demo_config_path().parent / "paper_gpu.yaml")
    assert (paper.elicit.n_questions, len(paper.elicit.techniques), paper.score.n_pref) == (250, 4, 40)


def test_the_shipped_study_is_the_demo_loop_on_three_tasks_and_two_seeds():
    """`make study` (docs/results.md measures it): the demo's settings but for the check and test sizes
    and a teacher given more tries at a task's questions."""
    import re
    from pathlib import Path

    folder = demo_config_path().parent
    demo, study = load_config(folder / "demo.yaml").to_dict(), load_config(folder / "study.yaml").to_dict()
    assert (study["check"]["n_items"], study["eval"]["n_test"]) == (12, 150)
    for section in ("check", "eval"):
        demo.pop(section), study.pop(section)
    assert study["elicit"].pop("max_unparsed_calls") == 10  # outside the run's identity: a stopped study resumes
    demo["elicit"].pop("max_unparsed_calls")
    assert study == demo
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    command = re.search(r"^study:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1).replace("\\\n", " ")
    seeds = re.search(r"--seeds ([\d ]+)", command).group(1).split()
    tasks = re.search(r"--tasks ([\w ]+?) --", command).group(1).split()
    assert "assets/configs/study.yaml" in command and len(seeds) >= 2 and len(tasks) >= 3


"""The `arte` command line: bad input gets one clear message and leaves the store as it was;
a run killed mid-stage resumes without recomputing or duplicating anything."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from arte_core.cli import main
from arte_core.store import Store
from paths import REPO, require_bbh


def write_task_dir(root: Path, name: str, examples, prompt: str | None) -> Path:
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "cot-prompts").mkdir(parents=True, exist_ok=True)
    (root / "tasks" / f"{name}.json").write_text(examples if isinstance(examples, str) else json.dumps(examples))
    if prompt is not None:
        (root / "cot-prompts" / f"{name}.txt").write_text(prompt)
    return root


GOOD_PROMPT = ("Say whether a number is even.\n\nQ: Is 4 even?\nA: Let's think step by step. 4 = 2 x 2. "
               "So the answer is Yes.\n\nQ: Is 3 even?\nA: Let's think step by step. 3 is odd. So the answer is No.")


def table_counts(db: Path) -> dict:
    if not db.exists():
        return {}
    with Store(db, read_only=True) as store:
        return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in ("runs", "pref_items", "questions")}


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "arte.duckdb"
    Store(path).close()
    return path


def config_file(tmp_path, **sections) -> Path:
    data = {"task": "boolean_expressions", "runs_dir": str(tmp_path / "runs"), **sections}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("case, expected", [
    ("malformed_json", r"tasks/even\.json is not valid JSON"),
    ("missing_prompt", r"has no cot-prompt: expected .*cot-prompts/even\.txt"),
    ("unknown_task", r"unknown task 'odd'"),
    ("empty_pref", r"too few for a preference split"),
    ("no_exemplar", r"no exemplars found"),
])
def test_bad_task_folders(case, expected, tmp_path, db, capsys):
    examples = {"examples": [{"input": f"Is {i} even?", "target": "Yes" if i % 2 == 0 else "No"} for i in range(20)]}
    task_name = "even"
    if case == "malformed_json":
        write_task_dir(tmp_path / "t", "even", '{"examples": [', GOOD_PROMPT)
    elif case == "missing_prompt":
        write_task_dir(tmp_path / "t", "even", examples, None)
    elif case == "unknown_task":
        write_task_dir(tmp_path / "t", "even", examples, GOOD_PROMPT)
        task_name = "odd"
    elif case == "empty_pref":
        write_task_dir(tmp_path / "t", "even", {"examples": examples["examples"][:1]}, GOOD_PROMPT)
    elif case == "no_exemplar":
        write_task_dir(tmp_path / "t", "even", examples, "Say whether a number is even.")
    before = table_counts(db)
    code, err = run_cli(capsys, "elicit", "--config", str(config_file(tmp_path)), "--db", str(db),
                        "--task", task_name, "--task-dir", str(tmp_path / "t"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("arte: error:")
    import re
    assert re.search(expected, err), err
    assert table_counts(db) == before


def test_unknown_model_and_config_field(tmp_path, db, capsys):
    code, err = run_cli(capsys, "elicit", "--config", str(config_file(tmp_path)), "--db", str(db), "--teacher", "gpt-17")
    assert code == 2 and "Unknown model 'gpt-17'" in err and "smollm2-135m-instruct" in err
    bad = config_file(tmp_path, score={"n_pref": 4, "temprature": 0.5})
    code, err = run_cli(capsys, "score", "--config", str(bad), "--db", str(db))
    assert code == 2 and "unknown config field 'temprature' in section 'score'" in err and str(bad) in err
    assert table_counts(db) == {"runs": 0, "pref_items": 0, "questions": 0}


def test_status_json_on_an_empty_store_and_a_missing_one(tmp_path, db, capsys):
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {}
    code, err = run_cli(capsys, "status", "--db", str(tmp_path / "nope.duckdb"))
    assert code == 2 and "no store at" in err


def test_bbh_task_folder_the_project_has_never_seen_loads(tmp_path, db, capsys):
    bbh = require_bbh()
    assert main(["config", "--config", str(config_file(tmp_path)), "--task", "sports_understanding",
                 "--task-dir", str(bbh)]) == 0
    assert "task: sports_understanding" in capsys.readouterr().out


def seeded_store(db: Path, config_path: Path, n_questions: int) -> None:
    """A run with hand-written drafts, registered exactly as `arte` would register it."""
    from arte_core.cli import effective_config, build_parser
    from arte_core.context import open_run
    from helpers import seed_drafts

    args = build_parser().parse_args(["score", "--config", str(config_path), "--db", str(db)])
    with Store(db) as store:
        ctx = open_run(effective_config(args), store)
        seed_drafts(ctx, [(f"{'not ' * (i % 3)}True and {'False' if i % 2 else 'True'} is", "True") for i in range(n_questions)])


def test_killed_score_run_resumes_without_recomputing(tmp_path, tiny_model_dir):
    db = tmp_path / "arte.duckdb"
    config_path = config_file(tmp_path, teacher=tiny_model_dir, student=tiny_model_dir, run_name="kill",
                              score={"n_pref": 8, "max_new_tokens": 48, "engine": "batched", "batch_size": 8},
                              elicit={"techniques": ["expert_procedure", "common_sense"]})
    seeded_store(db, config_path, n_questions=12)
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # a tiny model gains nothing from threads
    cmd = [sys.executable, "-m", "arte_core.cli", "score", "--config", str(config_path), "--db", str(db),
           "--events", str(events), "--quiet"]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and child.poll() is None:
        lines = [json.loads(l) for l in events.read_text().splitlines()] if events.exists() else []
        if any(e.get("done", 0) >= 1 and e.get("stage", "").startswith("ICL") for e in lines):
            break
        time.sleep(0.2)
    assert child.poll() is None, "the run finished before it could be killed; make it longer"
    assert time.time() < deadline, "no draft was scored in time"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Store(db, read_only=True) as store:
        first = store.rows("SELECT rationale_id, created_at FROM icl_scores ORDER BY rationale_id")
        items = store.scalar("SELECT count(*) FROM icl_items")
    assert 0 < len(first) < 24
    assert items == 8 * len(first)  # no draft is half-written
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with Store(db, read_only=True) as store:
        after = store.rows("SELECT rationale_id, created_at FROM icl_scores ORDER BY rationale_id")
        assert store.scalar("SELECT count(*) FROM icl_items") == 8 * 24
        assert store.is_done("kill", "score", tiny_model_dir)
    assert len(after) == 24
    assert [r for r in after if r["rationale_id"] in {f["rationale_id"] for f in first}] == first  # untouched


@pytest.mark.parametrize("flags, field", [
    (["--score.max_new_tokens", "-5"], "score.max_new_tokens"),
    (["--pairs.n_question_pairs", "-3"], "pairs.n_question_pairs"),
    (["--align.learning_rate=-1e-4"], "align.learning_rate"),  # argparse reads a bare -1e-4 as a flag
    (["--eval.shots", "[0,-3]"], "eval.shots"),
    (["--signal", "vibes"], "pairs.signal"),
])
def test_a_stage_refuses_a_bad_field_before_touching_the_store(flags, field, tmp_path, db, capsys):
    before = table_counts(db)
    code, err = run_cli(capsys, "score", "--config", str(config_file(tmp_path)), "--db", str(db), *flags)
    assert code == 2 and err.startswith("arte: error: ") and err.count("\n") == 1
    assert f"config field '{field}'" in err
    assert table_counts(db) == before


def test_a_bad_field_in_the_config_file_names_the_file_and_the_field(tmp_path, db, capsys):
    bad = config_file(tmp_path, score={"max_new_tokens": -5})
    code, err = run_cli(capsys, "score", "--config", str(bad), "--db", str(db))
    assert code == 2 and str(bad) in err
    assert "config field 'score.max_new_tokens' is -5; it must be at least 0." in err

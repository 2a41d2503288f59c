"""The whole ARTE loop through the `arte` command with the real SmolLM2-135M-Instruct, on a
minimal config: every stage fills its tables, and a rerun recomputes nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from arte_core.stages.registry import RUN_ORDER, STAGES
from arte_core.store import Store
from paths import REPO, require_bbh

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

MINIMAL = {
    "teacher": "smollm2-135m-instruct",
    "student": "smollm2-135m-instruct",
    "seed": 0,
    "elicit": {"prompt_format": "completion", "question_temperature": 0.7, "n_questions": 4,
               "question_max_new_tokens": 160, "techniques": ["expert_procedure", "common_sense"],
               "rationale_max_new_tokens": 64, "batch_size": 4},
    "score": {"n_pref": 6},  # answers get the task's token budget: a cut-off answer is unparsed
    "pairs": {"n_question_pairs": 4, "max_p": 1.0},  # 6 items cannot carry a pair to p <= 0.05
    "align": {"learning_rate": 1e-4, "batch_size": 2, "per_device_batch_size": 2, "max_length": 512},
    "distill": {"learning_rate": 1e-4, "use_lora": True, "batch_size": 2, "max_length": 512},
    "eval": {"n_test": 4, "max_new_tokens": 40, "shots": [0, 3]},
}


def arte(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "arte_core.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)


def run_whole_loop(tmp_path: Path, config: dict, *extra: str) -> dict:
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({**config, "runs_dir": str(tmp_path / "runs")}))
    db = tmp_path / "arte.duckdb"
    first = arte("run", "--config", str(config_path), "--db", str(db), *extra, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    status = arte("status", "--db", str(db), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    (run_id, counts), = json.loads(status.stdout).items()
    for stage in RUN_ORDER:  # every stage wrote what the registry says it writes, and is marked done
        for rows in STAGES[stage].writes:
            assert counts[str(rows)] > 0, (str(rows), counts)
        assert any(done.split(":")[0] == stage for done in counts["stages_done"]), (stage, counts["stages_done"])
    assert counts["evaluations"] == 6  # untrained / original / arte x 0- and 3-shot
    # like-for-like arms: both teachers wrote examples, and every trained arm got as many (distill cuts each arm
    # to the smaller one: a real teacher may write fewer parsable questions within its call budget)
    base, aligned = counts["rationales[origin=base]"], counts["rationales[origin=arte]"]
    assert base > 0 and aligned > 0
    with Store(db, read_only=True) as store:
        sizes = {r["dataset"]: r["n"] for r in store.rows("SELECT dataset, count(*) AS n FROM sft_examples GROUP BY ALL")}
    assert sizes == {"original": min(base, aligned), "arte": min(base, aligned)}
    assert [counts[f"artifacts[name={name}]"] for name in ("teacher_adapter", "student_arte")] == [1, 1]  # 'original': above
    events = tmp_path / "rerun.jsonl"
    again = arte("run", "--config", str(config_path), "--db", str(db), "--events", str(events), *extra, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    progressed = [e for e in map(json.loads, events.read_text().splitlines()) if e.get("done", 0) > 0]
    assert progressed == [], f"the rerun recomputed: {progressed[:3]}"
    rerun_status = json.loads(arte("status", "--db", str(db), "--json", cwd=tmp_path).stdout)
    assert rerun_status[run_id] == counts
    return counts


def test_whole_loop_on_a_built_in_task_then_a_rerun_recomputes_nothing(tmp_path):
    run_whole_loop(tmp_path, {**MINIMAL, "task": "boolean_expressions"})


def test_whole_loop_on_a_bbh_folder_the_project_has_never_seen(tmp_path):
    bbh = require_bbh()
    folder = tmp_path / "unseen"
    (folder / "tasks").mkdir(parents=True)
    (folder / "cot-prompts").mkdir()
    shutil.copy(bbh / "tasks" / "sports_understanding.json", folder / "tasks" / "plausible_sports.json")
    shutil.copy(bbh / "cot-prompts" / "sports_understanding.txt", folder / "cot-prompts" / "plausible_sports.txt")
    run_whole_loop(tmp_path, {**MINIMAL, "task": "plausible_sports"}, "--task-dir", str(folder))

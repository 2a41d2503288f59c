"""Studio jobs as real child processes on real DuckDB files: done, failed, stopped, after a restart."""

import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest
from helpers import JOB_TIMEOUT_S, decision_row, make_config, populate_drafts, stop_leftovers, wait_until

from arte_core.config import RunConfig
from arte_core.context import open_run
from arte_core.errors import ArteError
from arte_core.jobs import (JobManager, job_paths, kill_process_tree, last_error_line, normalise_stages,
                            process_identity, stage_commands)
from arte_core.progress import read_events
from arte_core.stages.registry import RUN_ORDER, STAGES
from arte_core.store import Store


@pytest.fixture
def config(tiny_model_dir, tmp_path) -> RunConfig:
    return make_config(tiny_model_dir, tmp_path)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "project.duckdb")
    yield store
    store.close()


@pytest.fixture
def manager(store, tmp_path):
    jobs = JobManager(store, tmp_path / "runs")
    yield jobs
    stop_leftovers(jobs)


def with_drafts(store: Store, config: RunConfig) -> str:
    run_id = open_run(config, store).run_id
    populate_drafts(store, run_id, config.student, n_questions=8)
    return run_id


def wait_for_exit(manager: JobManager, job_id: str) -> None:
    """Until the child's process has ended (without finalising the job)."""
    row = manager.job(job_id)
    proc = psutil.Process(row["pid"])
    try:
        proc.wait(timeout=JOB_TIMEOUT_S)  # also reaps it: our test process is its parent
    except psutil.TimeoutExpired:
        log = job_paths(row["job_dir"])["log"].read_text()
        raise AssertionError(f"job {job_id} still running after {JOB_TIMEOUT_S}s; log:\n{log}") from None


@pytest.fixture(scope="module")
def ended_jobs(tmp_path_factory, tiny_model_dir):
    """Two `pairs` jobs launched side by side (their start-up overlaps), each in its own studio:
    'done' on hand-made drafts and scores, 'failed' on a run without scores. Both processes have
    ended when the tests get them; neither job is finalised yet."""
    cases = {}
    for name in ("done", "failed"):
        root = tmp_path_factory.mktemp(name)
        store = Store(root / "project.duckdb")
        config = make_config(tiny_model_dir, root)
        run_id = with_drafts(store, config) if name == "done" else open_run(config, store).run_id
        with store.transaction():
            store.insert("pair_decisions", [decision_row(1, "p-x")])
        manager = JobManager(store, root / "runs")
        job = manager.launch(config, ["pairs"], who="tester")
        assert store.pairs(run_id) == []  # the child writes to its own job store, not to ours
        cases[name] = SimpleNamespace(root=root, store=store, config=config, run_id=run_id, manager=manager, job=job)
    try:
        for case in cases.values():
            wait_for_exit(case.manager, case.job["job_id"])
        yield cases
    finally:
        for case in cases.values():
            stop_leftovers(case.manager)
            case.store.close()


def test_pairs_job_is_ingested_even_by_a_restarted_studio(ended_jobs):
    case = ended_jobs["done"]
    store, job, run_id, student = case.store, case.job, case.run_id, case.config.student
    assert job["status"] == "running" and job["stages"] == "pairs" and job["who"] == "tester"
    assert job["run_id"] == run_id
    assert case.manager.job(job["job_id"])["status"] == "running"  # recorded state until a refresh
    assert store.pairs(run_id) == []

    restarted = JobManager(store, case.root / "runs")  # the app restarted: no Popen object, only pid and files
    assert restarted.refresh() == [job["job_id"]]
    done = restarted.job(job["job_id"])
    assert done["status"] == "done", done["message"]
    assert done["finished_at"] is not None and restarted.active() is None
    pairs = store.pairs(run_id, student)
    assert {p["kind"] for p in pairs} == {"question", "rationale"}
    with Store(job_paths(job["job_dir"])["db"], read_only=True) as job_store:
        assert sorted(p["pair_id"] for p in job_store.pairs(run_id)) == sorted(p["pair_id"] for p in pairs)
    assert store.stage_info(run_id, "pairs", student) == {"n_pairs": len(pairs), "signal": "icl", "style": "arte",
                                                         "neutral": "auto", "score": "balanced_accuracy",
                                                         "max_p": 1.0, "n_within_noise": 0}
    assert store.scalar("SELECT count(*) FROM pair_decisions") == 1
    assert not restarted.lock_path.exists()
    assert restarted.refresh() == [] and case.manager.refresh() == []  # finalised once

    progress = restarted.progress(job["job_id"])
    assert progress["status"] == "done" and progress["stage"] == "pairs"
    assert progress["stages_finished"] == ["pairs"] and progress["exit_code"] == 0
    assert any("arte pairs" in line for line in progress["log_tail"])
    assert progress["elapsed_s"] > 0


def test_failing_job_reports_the_error_line_and_keeps_decisions(ended_jobs):
    case = ended_jobs["failed"]
    manager, job = case.manager, case.job
    assert manager.refresh() == [job["job_id"]]
    failed = manager.job(job["job_id"])
    assert failed["status"] == "failed"
    # the CLI's error line (since the registry checks a stage's inputs first, it names the missing drafts)
    assert failed["message"].startswith("arte: error: `arte pairs` needs questions[origin=draft] rows")
    assert manager.progress(job["job_id"])["exit_code"] == 2
    assert case.store.scalar("SELECT count(*) FROM pair_decisions") == 1
    assert case.store.run(case.run_id)  # the run row is still there and a relaunch may resume it
    assert not manager.lock_path.exists()


def launch_generating_job(manager, config) -> tuple[dict, dict]:
    """An elicit job far longer than any test waits for, once its child has loaded the teacher and is
    generating: (the jobs row, its job_paths)."""
    config.elicit.n_questions = 5000
    config.elicit.question_max_new_tokens = 32
    job = manager.launch(config, ["elicit"])
    paths = job_paths(job["job_dir"])
    wait_until(lambda: any(e.get("stage") == "draft questions" for e in read_events(paths["events"])),
               what="the child to load the teacher and start generating")
    return job, paths


def test_stop_kills_the_process_tree_and_frees_the_lock(manager, store, config, tmp_path):
    job, paths = launch_generating_job(manager, config)
    leader = psutil.Process(job["pid"])
    tree = [leader] + leader.children(recursive=True)
    assert leader.memory_info().rss > 50e6  # it holds a model and torch

    with pytest.raises(ArteError, match="already running"):
        manager.launch(config, ["score"])
    with pytest.raises(ArteError, match="already running"):  # another studio on this machine
        with Store(tmp_path / "other.duckdb") as other:
            JobManager(other, tmp_path / "runs").launch(config, ["score"])
    progress = manager.progress(job["job_id"])
    assert progress["status"] == "running" and progress["stage"] == "elicit"
    assert progress["bar_stage"] == "draft questions" and progress["total"] == 5000

    stopped = manager.stop(job["job_id"], who="tester")
    assert stopped["status"] == "stopped" and stopped["message"] == "stopped by tester"
    survivors = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == []  # its memory went with it
    assert not manager.lock_path.exists()
    assert manager.active() is None
    assert manager.refresh() == []  # stop already finalised it
    with pytest.raises(ArteError, match="not running"):
        manager.stop(job["job_id"])


@pytest.mark.parametrize("studio", ["same", "restarted"])
def test_a_job_killed_from_outside_says_so_and_points_to_its_log(manager, store, config, tmp_path, studio):
    """A kill the studio did not do (kill -9, the OOM killer) leaves no exit.json: the message says the
    job was killed from outside and where its log is, never the progress bar the log happened to end on.
    The studio that launched it knows the signal; one restarted since knows only that it vanished."""
    job, paths = launch_generating_job(manager, config)
    os.killpg(job["pid"], signal.SIGKILL)  # someone else's kill: not manager.stop
    watcher = manager if studio == "same" else JobManager(store, tmp_path / "runs")  # no Popen: pid and files only
    wait_until(lambda: watcher.refresh(), what="the studio to notice the job ended")
    failed = watcher.job(job["job_id"])
    assert failed["status"] == "failed"
    assert "killed from outside" in failed["message"]
    assert ("by signal SIGKILL" in failed["message"]) == (studio == "same")
    assert str(paths["log"]) in failed["message"]
    assert "could not ingest" not in failed["message"]  # it waited for the dying child to let go of its store
    last_log_line = paths["log"].read_text().splitlines()[-1].rsplit("\r", 1)[-1]
    assert "it/s" in last_log_line or "%|" in last_log_line  # the log does end on a progress bar
    assert "%|" not in failed["message"] and "it/s" not in failed["message"]
    assert not watcher.lock_path.exists()


def test_kill_process_tree_reaches_grandchildren():
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    leader = psutil.Process(proc.pid)
    wait_until(lambda: leader.children(), timeout=30, what="the grandchild")
    tree = [leader] + leader.children(recursive=True)
    assert sorted(kill_process_tree(process_identity(proc.pid), grace_s=2.0)) == sorted(p.pid for p in tree)
    proc.wait(timeout=5)
    assert [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_launch_refuses_read_only_store_and_unknown_stage(store, config, tmp_path):
    with pytest.raises(ArteError, match="unknown stage"):
        normalise_stages(["pairs", "bake"])
    assert normalise_stages("all") == normalise_stages(["evaluate", "run"])
    assert normalise_stages(["pairs", "elicit"]) == ["elicit", "pairs"]
    path = store.path
    store.close()
    with Store(path, read_only=True) as ro:
        with pytest.raises(ArteError, match="read-only"):
            JobManager(ro, tmp_path / "runs").launch(config, ["pairs"])


def test_stale_lock_of_a_dead_process_is_cleared(manager, store, config, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    manager.lock_path.parent.mkdir(parents=True, exist_ok=True)
    manager.lock_path.write_text(f'{{"pid": {dead.pid}, "create_time": 1.0, "job_id": "old"}}')
    assert manager._lock_holder() is None and not manager.lock_path.exists()
    manager.lock_path.write_text("")  # another launch created it a moment ago and is writing its pid
    with pytest.raises(ArteError, match="already running"):
        manager.launch(config, ["pairs"])
    assert manager.lock_path.exists() and manager.jobs() == []


def test_last_error_line_prefers_the_cli_error(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("loading\narte: error: bad thing\n[job] exit code 2\n")
    assert last_error_line(log) == "arte: error: bad thing"
    log.write_text("Traceback (most recent call last):\n  File x\nValueError: boom\n[job] exit code 1\n")
    assert last_error_line(log) == "ValueError: boom"
    # a failure that printed no error line: point to the log, not to the progress bar it ended on
    log.write_text("Loading weights: 100%|██████████| 21/21 [00:00<00:00, 23664.80it/s]\n[job] exit code 1\n")
    message = last_error_line(log)
    assert str(log) in message and "Loading weights" not in message and "exit code" not in message


def test_a_vanished_job_is_reported_as_killed_from_outside(tmp_path):
    """Also after a restart, when no signal is known: the job died without writing exit.json."""
    from arte_core.jobs import killed_from_outside_message

    log = tmp_path / "log.txt"
    log.write_text("Loading weights: 100%|██████████| 21/21 [00:00<00:00, 23664.80it/s]\n")
    for returncode, said in ((None, "killed from outside"), (-signal.SIGTERM, "SIGTERM"), (-signal.SIGKILL, "SIGKILL")):
        message = killed_from_outside_message(log, returncode)
        assert "killed from outside" in message and said in message and str(log) in message
        assert "Loading weights" not in message


def test_stage_commands_run_the_whole_loop_as_one_arte_run(tmp_path):
    spec = {"job_id": "j", "run_id": "r", "runs_dir": str(tmp_path / "runs"), "stages": normalise_stages("all")}
    assert spec["stages"] == RUN_ORDER and "influence" not in RUN_ORDER
    common = ["--config", str(tmp_path / "config.yaml"), "--db", str(tmp_path / "job.duckdb"),
              "--events", str(tmp_path / "events.jsonl"), "--quiet", "--run-name", "r",
              "--runs-dir", str(tmp_path / "runs")]
    assert stage_commands(tmp_path, spec) == [["run", *common]]  # one process: the task and models load once

    spec["stages"] = normalise_stages(["pairs", "elicit"])
    assert stage_commands(tmp_path, spec) == [["elicit", *common], ["pairs", *common]]

    # 'all' with the optional influence stage: the loop's stages and influence, each alone, influence
    # after score and before the pairs built from it (other optional stages run only when named)
    spec["stages"] = normalise_stages(["all", "influence"])
    expected = [stage for stage in STAGES if stage in RUN_ORDER or stage == "influence"]
    assert spec["stages"] == expected
    assert spec["stages"].index("score") < spec["stages"].index("influence") < spec["stages"].index("pairs")
    assert [command[0] for command in stage_commands(tmp_path, spec)] == expected
    assert normalise_stages(["influence"]) == ["influence"]

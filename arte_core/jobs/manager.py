"""JobManager: launches, follows, stops and ingests studio jobs; one job at a time per machine."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml

from arte_core.config import RunConfig, config_from_dict
from arte_core.errors import ArteError
from arte_core.jobs.commands import normalise_stages
from arte_core.jobs.files import (job_paths, killed_from_outside_message, last_error_line, log_tail, read_json,
                                 write_json)
from arte_core.jobs.processes import find_process, kill_process_tree, process_identity
from arte_core.progress import Reporter, read_events
from arte_core.store import Store, utcnow
from arte_core.store import jobs as job_rows
from arte_core.store.transfer import export_run, ingest

LOCK_NAME = "job.lock"
CHILD_MODULE = "arte_core.jobs.child"
INGEST_LOCK_WAIT_S = 10.0  # how long a job file may stay locked by a child that is still dying


class JobManager:
    """Launches, follows, stops and ingests studio jobs; one job at a time per runs folder."""

    def __init__(self, store: Store, runs_dir: str | Path):
        self.store = store
        self.runs_dir = Path(runs_dir).resolve()
        self._popen: dict[str, subprocess.Popen] = {}  # only to reap children this process started
        self._lock = threading.RLock()  # Gradio calls handlers from several threads

    @property
    def lock_path(self) -> Path:
        return self.runs_dir / LOCK_NAME

    # -- queries --------------------------------------------------------------------------

    def jobs(self) -> list[dict]:
        """Every job, newest first."""
        return job_rows.all_jobs(self.store)

    def job(self, job_id: str) -> dict:
        found = job_rows.job(self.store, job_id)
        if found is None:
            raise ArteError(f"no job '{job_id}' in {self.store.path}.")
        return found

    def active(self) -> dict | None:
        """The running job (as last recorded; call refresh() first for the latest state)."""
        return job_rows.newest_running_job(self.store)

    # -- the machine-wide lock ------------------------------------------------------------

    def _lock_holder(self) -> dict | None:
        """The lock's content when its process lives; a stale lock (dead pid) is removed."""
        holder = read_json(self.lock_path)
        if holder is None:
            try:
                age = time.time() - self.lock_path.stat().st_mtime
            except FileNotFoundError:
                return None
            if age < 10:  # just created by a launch that has not written its pid yet
                return {"pid": "?", "job_id": None}
        if find_process(holder) is not None:
            return holder
        self.lock_path.unlink(missing_ok=True)
        return None

    def _acquire_lock(self) -> None:
        holder = self._lock_holder()
        if holder is not None:
            raise ArteError(f"job {holder.get('job_id') or '(starting)'} is already running on this machine "
                            f"(pid {holder['pid']}); stop it or wait for it to finish before launching another.")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two launches racing here, exactly one creates the file
            fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise ArteError("another job is being launched on this machine right now; try again.") from None
        with os.fdopen(fd, "w") as fh:
            json.dump({**process_identity(os.getpid()), "job_id": None}, fh)

    def _release_lock(self, job_id: str) -> None:
        """Remove the lock if it names this job (a later job's lock stays)."""
        if (read_json(self.lock_path) or {}).get("job_id") == job_id:
            self.lock_path.unlink(missing_ok=True)

    # -- launch ---------------------------------------------------------------------------

    def launch(self, config: RunConfig, stages: list[str] | str, who: str = "studio") -> dict:
        """Start a job running `stages` of the run `config` describes; returns its jobs row."""
        if self.store.read_only:
            raise ArteError(f"the store {self.store.path} is open read-only; jobs can only be launched by "
                            "the process that owns it.")
        stages = normalise_stages(stages)
        with self._lock:
            self.refresh()  # a job that just ended is ingested before the next one exports
            self._acquire_lock()
            try:
                return self._start(config, stages, who)
            except BaseException:
                self.lock_path.unlink(missing_ok=True)  # acquired in this call, so it is ours
                raise

    def relaunch(self, job_id: str, who: str = "studio") -> dict:
        """A new job with the same config and stages as an earlier one (it resumes what is stored)."""
        row = self.job(job_id)
        config = config_from_dict(yaml.safe_load(row["config_yaml"]))
        return self.launch(config, row["stages"].split(","), who)

    def _start(self, config: RunConfig, stages: list[str], who: str) -> dict:
        from arte_core.context import open_run  # loads the task: only when launching

        config = copy.deepcopy(config)
        config.runs_dir = str(self.runs_dir)  # adapters land where this studio looks for them
        config.run_name = config.resolved_run_name  # the child must use the very same run id
        ctx = open_run(config, self.store, Reporter(None, show_bar=False))  # registers the run and its splits
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = self.runs_dir / "jobs" / job_id
        job_dir.mkdir(parents=True)
        paths = job_paths(job_dir)
        config_yaml = config.to_yaml()
        paths["config"].write_text(config_yaml, encoding="utf-8")
        write_json(paths["spec"], {"job_id": job_id, "run_id": ctx.run_id, "stages": stages,
                                   "runs_dir": str(self.runs_dir)})
        export_run(self.store, ctx.run_id, paths["db"])
        proc = self._spawn(job_dir, paths["log"])
        identity = {"pid": proc.pid}
        try:
            identity = process_identity(proc.pid)
            write_json(paths["process"], identity)
            write_json(self.lock_path, {**identity, "job_id": job_id})
            job_rows.add_job(self.store, dict(
                job_id=job_id, run_id=ctx.run_id, stages=",".join(stages), status="running", pid=proc.pid,
                job_dir=str(job_dir), config_yaml=config_yaml, who=who, message=None, started_at=utcnow()))
        except BaseException:
            kill_process_tree(identity, grace_s=1.0)  # no row records it, so nothing else would stop it
            raise
        return self.job(job_id)

    def _spawn(self, job_dir: Path, log_path: Path) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # log lines reach log.txt as they are written
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, str(job_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # its own process group: stop() kills the whole tree
            )
        self._popen[job_dir.name] = proc
        return proc

    # -- follow and finish ----------------------------------------------------------------

    def _identity(self, row: dict) -> dict:
        return read_json(job_paths(row["job_dir"])["process"]) or {"pid": row["pid"]}

    def is_alive(self, row: dict) -> bool:
        proc = self._popen.get(row["job_id"])
        if proc is not None:  # our own child: waitpid (poll) answers only once all its threads have gone,
            return proc.poll() is None  # while its leader may already look like a zombie holding job.duckdb
        return find_process(self._identity(row)) is not None

    def refresh(self) -> list[str]:
        """Finalise every running job whose process has ended; returns their ids."""
        finished = []
        with self._lock:
            if self.store.read_only:
                return finished
            for row in job_rows.running_jobs(self.store):
                if not self.is_alive(row):
                    self._finalise(row)
                    finished.append(row["job_id"])
        return finished

    def stop(self, job_id: str, who: str = "studio") -> dict:
        """Kill a running job's process tree, ingest what it committed and mark it stopped."""
        with self._lock:
            row = self.job(job_id)
            if row["status"] != "running":
                raise ArteError(f"job {job_id} is not running (it is {row['status']}); nothing to stop.")
            if not self.is_alive(row):  # it ended on its own just now: record how it ended
                self._finalise(row)
                return self.job(job_id)
            kill_process_tree(self._identity(row))
            proc = self._popen.get(job_id)
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self._finalise(row, status="stopped", message=f"stopped by {who}")
            return self.job(job_id)

    def _exit_code(self, row: dict) -> int | None:
        exit_info = read_json(job_paths(row["job_dir"])["exit"])
        if exit_info is not None and "code" in exit_info:
            return int(exit_info["code"])
        return None

    def _finalise(self, row: dict, status: str | None = None, message: str | None = None) -> None:
        paths = job_paths(row["job_dir"])
        if status is None:
            code = self._exit_code(row)
            status = "done" if code == 0 else "failed"
            if code is None:  # no exit.json: the child never reached its `finally`
                proc = self._popen.get(row["job_id"])
                message = killed_from_outside_message(paths["log"], proc.returncode if proc is not None else None)
            elif code != 0:
                message = last_error_line(paths["log"])
        try:
            counts = self._ingest(paths["db"])
            write_json(paths["ingested"], counts)
            message = message or f"ingested {sum(counts.values())} rows"
        except Exception as exc:  # a job file that cannot be read must not break the studio's refresh
            status, message = "failed", f"{message + '; ' if message else ''}could not ingest {paths['db']}: {exc}"
        job_rows.finish_job(self.store, row["job_id"], status, message)
        self._release_lock(row["job_id"])
        self._popen.pop(row["job_id"], None)

    def _ingest(self, job_db: Path) -> dict:
        """Ingest a job file, waiting a moment while a dying child (not our own, so not waitable) still
        holds its lock: a killed process's leader looks dead before its last thread has let go."""
        deadline = time.monotonic() + INGEST_LOCK_WAIT_S
        while True:
            try:
                return ingest(self.store, job_db)
            except Exception as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # -- progress -------------------------------------------------------------------------

    def progress(self, job_id: str) -> dict:
        """Everything the Runs tab shows for one job, read from stored state and the job folder."""
        row = self.job(job_id)
        paths = job_paths(row["job_dir"])
        events = read_events(paths["events"])
        started = [e["stage_started"] for e in events if "stage_started" in e]
        finished = [e["stage_finished"] for e in events if "stage_finished" in e]
        bars = [e for e in events if "done" in e and "total" in e]
        bar = bars[-1] if bars else {}
        total, done = bar.get("total") or 0, bar.get("done") or 0
        end = row["finished_at"] or utcnow()
        losses = [e for e in events if "loss" in e and "step" in e]
        loss_stage = losses[-1].get("stage") if losses else None  # DPO and SFT each have their own curve
        return dict(
            job_id=job_id, run_id=row["run_id"], status=row["status"], message=row["message"],
            stages=row["stages"].split(","), stages_finished=finished,
            stage=started[-1] if started else None, bar_stage=bar.get("stage"), done=done, total=total,
            fraction=min(1.0, done / total) if total else (1.0 if row["status"] == "done" else 0.0),
            log_tail=log_tail(paths["log"]),
            loss_stage=loss_stage, loss=[(e["step"], e["loss"]) for e in losses if e.get("stage") == loss_stage],
            started_at=row["started_at"], finished_at=row["finished_at"],
            elapsed_s=max(0.0, (end - row["started_at"]).total_seconds()), exit_code=self._exit_code(row),
        )

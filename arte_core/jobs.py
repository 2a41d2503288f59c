"""Long runs launched from the studio, each in a child process with its own job store.

The studio owns the project store read-write, and DuckDB lets one process do that, so a job's
child cannot open it. `JobManager.launch` exports the run's rows into `<job_dir>/job.duckdb`,
starts `python -m arte_core.jobs_child <job_dir>` in a new session (its own process group) with
output to `log.txt` (a file: a full pipe would stall the child when nobody reads it), and records
a `jobs` row. The child runs the normal CLI stages on the job file and appends progress events to
`events.jsonl`. `refresh` finds jobs whose process ended, ingests their job file (also after a
failure or a stop: every committed row is valid and resumable) and records the outcome; it needs
only the pid and the files in the job folder, so it works after an app restart. `stop` kills the
whole process group, which is what frees the memory the models held.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import yaml

from arte_core.config import RunConfig, config_from_dict
from arte_core.errors import ArteError
from arte_core.stages.registry import RUN_ORDER, STAGES

STAGE_ORDER = list(STAGES)
from arte_core.progress import Reporter, read_events
from arte_core.store import Store, utcnow
from arte_core.store.transfer import export_run, ingest

LOCK_NAME = "job.lock"
STOP_GRACE_S = 5.0  # SIGTERM first so logs flush; SIGKILL whatever is left after this
LOG_TAIL_LINES = 30


# -- job folder files -------------------------------------------------------------------------


def job_paths(job_dir: str | Path) -> dict[str, Path]:
    """The files of one job folder (the child writes log, events and exit; the owner the rest)."""
    job_dir = Path(job_dir)
    names = {"spec": "job.json", "config": "config.yaml", "db": "job.duckdb", "events": "events.jsonl",
             "log": "log.txt", "exit": "exit.json", "process": "process.json", "ingested": "ingested.json"}
    return {key: job_dir / name for key, name in names.items()}


def write_json(path: Path, data: dict) -> None:
    """Write then rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 65536) -> list[str]:
    """The last lines of a log file, reading only its end (logs of long runs grow large)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    # A progress bar rewrites its line with carriage returns: keep what was shown last.
    return [line.rsplit("\r", 1)[-1] for line in text.splitlines()][-lines:]


def last_error_line(path: Path) -> str:
    """The line that says why a job failed: the CLI's `arte: error:` line, else a traceback's last line."""
    tail = [line.strip() for line in log_tail(path, 200) if line.strip()]
    for line in reversed(tail):
        if line.startswith("arte: error:"):
            return line
    for line in reversed(tail):
        if "Error" in line or "error" in line:
            return line
    return tail[-1] if tail else "the job ended with an error and wrote no log."


def normalise_stages(stages: list[str] | str) -> list[str]:
    """Stage names in pipeline order; 'all' or 'run' means every stage."""
    names = [stages] if isinstance(stages, str) else list(stages)
    if not names or any(n in ("all", "run") for n in names):
        return list(RUN_ORDER)  # the whole loop; optional stages (influence) only when named
    unknown = [n for n in names if n not in STAGE_ORDER]
    if unknown:
        raise ArteError(f"unknown stage {', '.join(unknown)}; choose from all, {', '.join(STAGE_ORDER)}.")
    return [n for n in STAGE_ORDER if n in names]


# -- processes --------------------------------------------------------------------------------


def process_identity(pid: int) -> dict:
    """pid and start time: together they name a process even after its pid is reused."""
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def find_process(identity: dict | None) -> psutil.Process | None:
    """The live (not zombie) process an identity names, or None."""
    if not identity or not identity.get("pid"):
        return None
    try:
        proc = psutil.Process(int(identity["pid"]))
        if identity.get("create_time") and abs(proc.create_time() - identity["create_time"]) > 1.0:
            return None  # the pid now belongs to another process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def kill_process_tree(identity: dict, grace_s: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM a job's process group and every descendant, SIGKILL survivors; returns the pids seen.

    The group is signalled only while its leader is verified (or gone: Linux never hands out a pid
    that is still some group's id), so a reused pid can never lead us to another program's group."""
    pid = int(identity["pid"])
    leader = find_process(identity)
    procs = []
    if leader is not None:
        try:
            procs = [leader] + leader.children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
    elif psutil.pid_exists(pid):
        return []  # the pid belongs to an unrelated process now: nothing of ours is left to kill
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)  # the child started a new session, so its pid is its group id
        except (ProcessLookupError, PermissionError):
            pass
        for proc in _alive(procs):  # descendants that left the group
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace_s if sig == signal.SIGTERM else 5.0)
        if not _alive(alive):
            break
    return [p.pid for p in procs]


# -- the manager ------------------------------------------------------------------------------


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
        return self.store.rows("SELECT * FROM jobs ORDER BY started_at DESC, job_id DESC")

    def job(self, job_id: str) -> dict:
        found = self.store.rows("SELECT * FROM jobs WHERE job_id = ?", [job_id])
        if not found:
            raise ArteError(f"no job '{job_id}' in {self.store.path}.")
        return found[0]

    def active(self) -> dict | None:
        """The running job (as last recorded; call refresh() first for the latest state)."""
        found = self.store.rows("SELECT * FROM jobs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1")
        return found[0] if found else None

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
            row = dict(job_id=job_id, run_id=ctx.run_id, stages=",".join(stages), status="running", pid=proc.pid,
                       job_dir=str(job_dir), config_yaml=config_yaml, who=who, message=None, started_at=utcnow())
            with self.store.transaction():
                self.store.insert("jobs", [row])
        except BaseException:
            kill_process_tree(identity, grace_s=1.0)  # no row records it, so nothing else would stop it
            raise
        return self.job(job_id)

    def _spawn(self, job_dir: Path, log_path: Path) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # log lines reach log.txt as they are written
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "arte_core.jobs_child", str(job_dir)],
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
        if proc is not None and proc.poll() is not None:  # poll() also reaps our zombie child
            return False
        return find_process(self._identity(row)) is not None

    def refresh(self) -> list[str]:
        """Finalise every running job whose process has ended; returns their ids."""
        finished = []
        with self._lock:
            if self.store.read_only:
                return finished
            for row in self.store.rows("SELECT * FROM jobs WHERE status = 'running'"):
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
            if code is None:
                message = f"the job process ended without an exit code (killed from outside?); {last_error_line(paths['log'])}"
            elif code != 0:
                message = last_error_line(paths["log"])
        try:
            counts = ingest(self.store, paths["db"])
            write_json(paths["ingested"], counts)
            message = message or f"ingested {sum(counts.values())} rows"
        except Exception as exc:  # a job file that cannot be read must not break the studio's refresh
            status, message = "failed", f"{message + '; ' if message else ''}could not ingest {paths['db']}: {exc}"
        self.store.execute("UPDATE jobs SET status = ?, message = ?, finished_at = ? WHERE job_id = ?",
                           [status, message, utcnow(), row["job_id"]])
        self._release_lock(row["job_id"])
        self._popen.pop(row["job_id"], None)

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

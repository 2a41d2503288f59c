"""A job's folder: its file names, atomic JSON files, the log's last lines and why the job failed."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

LOG_TAIL_LINES = 30


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


# A progress bar's line, e.g. "Loading weights: 100%|██████████| 21/21 [00:00<00:00, 23664.80it/s]":
# the last thing a log shows when a job dies mid-bar, and never the reason it failed.
_PROGRESS_BAR = re.compile(r"\d+%\||\|\s*\d+/\d+\s*\[|\d+/\d+ \[\d+:\d+|it/s\]|s/it\]")


def is_progress_bar(line: str) -> bool:
    return bool(_PROGRESS_BAR.search(line))


def last_error_line(path: Path) -> str:
    """The line that says why a job failed: the CLI's `arte: error:` line, else a traceback's last
    line, else a pointer to the log (never a progress bar or the child's own `[job]` lines)."""
    tail = [line.strip() for line in log_tail(path, 200) if line.strip()]
    tail = [line for line in tail if not line.startswith("[job") and not is_progress_bar(line)]
    for line in reversed(tail):
        if line.startswith("arte: error:"):
            return line
    for line in reversed(tail):
        if "Error" in line or "error" in line or "Exception" in line:
            return line
    return f"the job failed without printing an error; see its log: {path}"


def killed_from_outside_message(log_path: Path, returncode: int | None = None) -> str:
    """Why a job that wrote no exit.json ended: something outside the studio killed it (kill, the
    out-of-memory killer, a shutdown). `returncode` is the child's when this process started it
    (negative: the signal), else None (the studio restarted since, so the signal is unknown)."""
    if returncode is not None and returncode < 0:
        try:
            how = f"by signal {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"by signal {-returncode}"
    elif returncode is not None:
        how = f"(its process exited with code {returncode} before writing its exit code)"
    else:
        how = "(its process ended without writing its exit code: a signal such as SIGKILL, e.g. the out-of-memory killer)"
    return (f"the job was killed from outside the studio {how}; what it had committed is kept and a relaunch "
            f"resumes it; see its log: {log_path}")

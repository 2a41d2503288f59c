"""A job's folder: its file names, atomic JSON files, the log's last lines and its error line."""

from __future__ import annotations

import json
import os
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

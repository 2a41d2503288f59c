"""Progress of long work: a tqdm bar on the terminal and, when a run folder is set, JSON lines the
studio polls (one line per update: stage, done, total, time), so a page reload loses nothing."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm


class Bar:
    """One stage's progress; usable as a context manager."""

    def __init__(self, reporter: "Reporter", stage: str, total: int):
        self.reporter, self.stage, self.total, self.done = reporter, stage, total, 0
        self._tqdm = tqdm(total=total, desc=stage, disable=not reporter.show_bar, file=sys.stderr,
                          dynamic_ncols=True, leave=True)
        self.reporter.emit(stage=stage, done=0, total=total)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._tqdm.update(n)
        self.reporter.emit(stage=self.stage, done=self.done, total=self.total)

    def close(self) -> None:
        self._tqdm.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Reporter:
    """Creates bars and appends progress and log events to `events_path` when given."""

    def __init__(self, events_path: str | Path | None = None, show_bar: bool = True):
        self.events_path = Path(events_path) if events_path else None
        self.show_bar = show_bar

    def bar(self, stage: str, total: int) -> Bar:
        return Bar(self, stage, total)

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        self.emit(log=message)

    def emit(self, **event) -> None:
        if self.events_path is None:
            return
        event["time"] = time.time()
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        with self.events_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")


def read_events(path: str | Path) -> list[dict]:
    """Events written so far; a half-written last line (the writer was killed mid-line) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events

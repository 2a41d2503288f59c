"""Studio jobs: long runs launched from the studio, each in a child process with its own job store.

The studio owns the project store read-write, and DuckDB lets one process do that, so a job's child
cannot open it. `JobManager.launch` exports the run's rows into `<job_dir>/job.duckdb`, starts
`python -m arte_core.jobs.child <job_dir>` in a new session (its own process group) with output to
`log.txt` (a file: a full pipe would stall the child when nobody reads it), and records a `jobs` row.
The child runs `arte` on the job file and appends progress events to `events.jsonl`. `refresh` finds
jobs whose process ended, ingests their job file (also after a failure or a stop: every committed row
is valid and resumable) and records the outcome; it needs only the pid and the files in the job
folder, so it works after an app restart. `stop` kills the whole process group, which is what frees
the memory the models held.

Modules: `commands` (which stages a job runs, as which `arte` commands), `files` (the job folder),
`processes` (process identity, killing a tree), `manager` (JobManager), `child` (the child's entry).
"""

from arte_core.jobs.commands import normalise_stages, stage_commands
from arte_core.jobs.files import (job_paths, killed_from_outside_message, last_error_line, log_tail, read_json,
                                 write_json)
from arte_core.jobs.manager import JobManager
from arte_core.jobs.processes import find_process, kill_process_tree, process_identity

__all__ = ["JobManager", "find_process", "job_paths", "kill_process_tree", "killed_from_outside_message",
           "last_error_line", "log_tail", "normalise_stages", "process_identity", "read_json", "stage_commands",
           "write_json"]

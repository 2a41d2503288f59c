"""The child process of a studio job: `python -m arte_core.jobs.child JOB_DIR`.

Runs the job's `arte` commands (`arte_core.jobs.commands`) against the job-local store (never the
project store, which the studio holds open), then writes `exit.json` with the exit code so the owner
can tell a clean finish from a crash even after it restarted. Output goes wherever the parent pointed
stdout and stderr (the job's log.txt).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from arte_core.jobs.commands import stage_commands
from arte_core.jobs.files import job_paths, write_json


def run_job(job_dir: Path) -> int:
    from arte_core.cli import main as cli_main

    spec = json.loads(job_paths(job_dir)["spec"].read_text(encoding="utf-8"))
    for args in stage_commands(job_dir, spec):
        print(f"[job {spec['job_id']}] arte {' '.join(args)}", flush=True)
        code = cli_main(args)
        if code:
            return code
    return 0


def write_exit(job_dir: Path, code: int) -> None:
    write_json(job_paths(job_dir)["exit"], {"code": code})  # atomic: the owner never reads half of it


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m arte_core.jobs.child JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[0])
    code = 1
    try:
        code = run_job(job_dir)
    except SystemExit as exc:  # argparse exits on a bad argument list
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # an unexpected crash: its traceback goes to the log, the code says failed
        traceback.print_exc()
        code = 1
    finally:
        write_exit(job_dir, code)
        print(f"[job] exit code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

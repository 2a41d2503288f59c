"""The child process of a studio job: `python -m arte_core.jobs_child JOB_DIR`.

Runs the job's stages through the normal CLI against the job-local store (never the project
store, which the studio holds open), then writes `exit.json` with the exit code so the owner can
tell a clean finish from a crash even after it restarted. Output goes wherever the parent pointed
stdout and stderr (the job's log.txt).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def stage_commands(job_dir: Path, spec: dict) -> list[list[str]]:
    """CLI argument lists: `run` when every stage is asked for (models stay loaded between
    stages), else one call per stage."""
    from arte_core.jobs import STAGE_ORDER

    stages = list(spec["stages"])
    commands = [["run"]] if stages == STAGE_ORDER else [[stage] for stage in stages]
    common = ["--config", str(job_dir / "config.yaml"), "--db", str(job_dir / "job.duckdb"),
              "--events", str(job_dir / "events.jsonl"), "--quiet", "--run-name", spec["run_id"],
              "--runs-dir", spec["runs_dir"]]
    return [command + common for command in commands]


def run_job(job_dir: Path) -> int:
    from arte_core.cli import main as cli_main

    spec = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    for args in stage_commands(job_dir, spec):
        print(f"[job {spec['job_id']}] arte {' '.join(args)}", flush=True)
        code = cli_main(args)
        if code:
            return code
    return 0


def write_exit(job_dir: Path, code: int) -> None:
    tmp = job_dir / "exit.json.tmp"
    tmp.write_text(json.dumps({"code": code}), encoding="utf-8")
    tmp.replace(job_dir / "exit.json")  # atomic: the owner never reads half of it


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m arte_core.jobs_child JOB_DIR", file=sys.stderr)
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

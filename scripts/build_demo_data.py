"""Rebuild the studio's demo dataset (`assets/demo/`) with the engine and the real SmolLM2.

Runs the demo config (`assets/configs/demo.yaml`) through the whole ARTE loop into a fresh store,
then exports its rows as Parquet. The app imports that folder into an empty store at start-up.
Adapters and models are not shipped (they stay in the run folder); paths in `artifacts` are kept
as provenance.

    .venv/bin/python scripts/build_demo_data.py [--config FILE] [--out assets/demo] [--work DIR]

With `--from-store DB` it runs nothing and exports the runs already in that store instead: the second shipped
dataset, `assets/demo_students/`, is the two-student study of `make study-students` exported this way:

    .venv/bin/python scripts/build_demo_data.py --from-store study-students.duckdb --out assets/demo_students
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arte_core.config import load_config  # noqa: E402
from arte_core.pipeline import run_stages  # noqa: E402
from arte_core.store import Store  # noqa: E402
from arte_core.store.transfer import export_parquet  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "assets" / "configs" / "demo.yaml"))
    parser.add_argument("--out", default=str(REPO / "assets" / "demo"))
    parser.add_argument("--work", help="folder for the store and run folder (default: a temporary one)")
    parser.add_argument("--from-store", help="export every run of this store instead of running --config")
    args = parser.parse_args()
    if args.from_store:
        return export_store(Path(args.from_store), Path(args.out))
    work = Path(args.work or tempfile.mkdtemp(prefix="arte-demo-"))
    config = load_config(args.config)
    config.runs_dir = str(work / "runs")
    started = time.time()
    with Store(work / "demo.duckdb") as store:
        ctx = run_stages(config, store)
        out = Path(args.out)
        shutil.rmtree(out, ignore_errors=True)
        counts = export_parquet(store, out, [ctx.run_id])
    print(f"built run {ctx.run_id} in {time.time() - started:.0f} s; exported to {out}: {counts}")
    return 0


def export_store(db: Path, out: Path) -> int:
    """Every run of an existing store (read-only) into `out`."""
    with Store(db, read_only=True) as store:
        run_ids = [r["run_id"] for r in store.list_runs()]
        shutil.rmtree(out, ignore_errors=True)
        counts = export_parquet(store, out, run_ids)
    print(f"exported runs {', '.join(run_ids)} of {db} to {out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

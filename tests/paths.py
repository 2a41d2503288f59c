"""Where tests find the shared material: `../shared` beside the checkout (CI has it there too)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The demo dataset as an older ARTE Studio exported it (schema 1, before parse modes, balanced accuracy, per-student
# results and like-for-like arms): the upgrade tests import it as a user's old export.
OLD_DEMO = REPO / "tests" / "data" / "demo_schema1"
BBH_DIR = Path(os.environ.get("ARTE_BBH_DIR", REPO.parent / "shared" / "data" / "bbh"))


def require_bbh() -> Path:
    """The BBH folder; in CI its absence is a failure, locally a skip."""
    if not (BBH_DIR / "tasks").is_dir():
        message = f"BBH data not found at {BBH_DIR} (set ARTE_BBH_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return BBH_DIR

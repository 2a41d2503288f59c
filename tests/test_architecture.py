"""The architecture as tests: the import-linter contracts in pyproject.toml (layers, and what the engine,
the store, the models and the UI may not import) and the size at which a file should be split."""

import subprocess
import sys
from pathlib import Path

from paths import REPO

MAX_LINES = 420  # ~400 is the signal to split a file by topic


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache", "--no-logo", "pyproject.toml"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_engine_or_ui_file_is_a_catch_all():
    sizes = {str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
             for folder in ("arte_core", "ui") for path in (REPO / folder).rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}

#!/usr/bin/env bash
# Build a fresh environment from requirements.txt alone, as a Hugging Face Space does (the project itself is not
# installed), start `python app.py` in it on an empty store, and check that it serves: HTTP 200 on /, and the
# demo's drafts load through gradio_client. A full install takes minutes, so this is `make space-check`, not part
# of `make test`. PYTHON chooses the interpreter (default python3); KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/arte-space-check.XXXXXX")
app_pid=""

finish() {
  status=$?
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
    kill "$app_pid" && wait "$app_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -f "$work/app.log" ]; then
    echo "space-check: FAILED; the app's log ends with:" >&2
    tail -n 30 "$work/app.log" >&2
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "space-check: kept $work"; else rm -rf "$work"; fi
}
trap finish EXIT

started=$SECONDS
echo "space-check: fresh environment in $work/venv, installing requirements.txt (minutes)"
"$PYTHON" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
# This file alone; PYTHONPATH and the user site stay out so nothing from the dev environment leaks in.
unset PYTHONPATH
export PYTHONNOUSERSITE=1
"$venv_python" -m pip install --quiet -r requirements.txt
installed=$SECONDS
echo "space-check: installed in $((installed - started)) s"
if "$venv_python" -m pip show --quiet arte-studio >/dev/null 2>&1; then
  echo "space-check: the project itself got installed; a Space would not install it" >&2
  exit 1
fi
# The built-in models' files come from the packages requirements.txt installed (found and hash-checked); an
# optional model (an `extra`, e.g. gemma3-270m) is not in requirements.txt and is skipped.
"$venv_python" -c '
from arte_core.models.registry import REGISTRY, find_gguf
for name, entry in REGISTRY.items():
    if entry.extra:
        print(f"space-check: model {name} is optional (make {entry.extra}), not installed here")
        continue
    print(f"space-check: model {name} from {find_gguf(entry)}")'

port=$("$venv_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/"
# An empty temporary store: the app fills it from assets/demo as on a Space's first start.
ARTE_DB="$work/arte.duckdb" ARTE_CACHE_DIR="$work/cache" GRADIO_SERVER_NAME=127.0.0.1 GRADIO_SERVER_PORT=$port \
  "$venv_python" app.py >"$work/app.log" 2>&1 &
app_pid=$!

"$venv_python" - "$url" "$app_pid" <<'PY'
"""Wait for the page, then load the demo's drafts through the public API, as a visitor's browser does."""
import os
import sys
import time
import urllib.request

from gradio_client import Client

url, app_pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 300
while True:
    try:
        os.kill(app_pid, 0)
    except ProcessLookupError:
        sys.exit("space-check: the app exited before serving")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            if response.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"space-check: no HTTP 200 on {url} within 300 s")
    time.sleep(2)
print(f"space-check: {url} answers 200")

client = Client(url, verbose=False)
endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/drafts_query"]
# Every filter at the value the page starts with (the run and student dropdowns default to the demo's);
# text filters without a default start empty.
arguments = {p["parameter_name"]: p["parameter_default"] if p["parameter_has_default"] else ""
             for p in endpoint["parameters"]}
table, *_ = client.predict(**arguments, api_name="/drafts_query")
rows = table["data"] if isinstance(table, dict) else table
if not arguments.get("run_id") or not rows:
    sys.exit(f"space-check: the Drafts tab shows no drafts (run {arguments.get('run_id')!r})")
print(f"space-check: the Drafts tab lists {len(rows)} drafts of run {arguments['run_id']}")
PY

echo "space-check: OK in $((SECONDS - started)) s (install $((installed - started)) s)"

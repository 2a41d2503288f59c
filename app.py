"""Start ARTE Studio: `python app.py` (also the Hugging Face Space entry point).

Environment: ARTE_DB (store file, default `arte.duckdb` here, or `/data/arte.duckdb` on a Space with
persistent storage), ARTE_RUNS_DIR (run folders, default `runs` beside the store), GRADIO_SERVER_PORT
or --port (default 7860), GRADIO_SERVER_NAME (default 127.0.0.1), ARTE_AUTH="user:pass[,user2:pass2]"
for a login, ARTE_READ_ONLY=1 for a public demo, ARTE_MODELS_DIR (the only folder whose model folders a
run launched from the studio may load) and ARTE_ALLOW_REMOTE_CODE=1 (let such runs set trust_remote_code).
An empty store is filled from the demo datasets in `assets/` (`demo/`, the demo loop, and `demo_students/`, a
two-student transfer study) when those folders exist.

On a Hugging Face Space (SPACE_ID set) the store is shared read-only: each visitor decides in a private copy
(ui/space.py), launching runs is off unless ARTE_ALLOW_RUNS=1, and with `hf_oauth: true` in the README's
front matter the Hugging Face sign-in names the reviewer.
"""

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
DEMO_DATA = REPO / "assets" / "demo"
# The second shipped run: a study cell with two real students (SmolLM2 and Gemma 3 270M) and the transfer arms.
DEMO_FOLDERS = (DEMO_DATA, REPO / "assets" / "demo_students")
DEFAULT_PORT = 7860


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="ARTE Studio: inspect drafts, review pairs, launch runs.")
    parser.add_argument("--db", default=None, help="store file (default: $ARTE_DB or arte.duckdb)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--host", default=None, help="interface (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--read-only", action="store_true", help="disable decisions, launches and Hub pushes")
    return parser.parse_args(argv)


def default_db_path() -> str:
    """ARTE_DB; else persistent storage on a Space (restarts wipe everything else); else ./arte.duckdb."""
    if os.environ.get("ARTE_DB"):
        return os.environ["ARTE_DB"]
    if os.environ.get("SPACE_ID") and Path("/data").is_dir() and os.access("/data", os.W_OK):
        return "/data/arte.duckdb"
    return "arte.duckdb"


def parse_auth(text: str | None) -> list[tuple[str, str]] | None:
    """ARTE_AUTH="alice:secret,bob:other" → [("alice", "secret"), ("bob", "other")]; empty → no login."""
    if not text or not text.strip():
        return None
    pairs = []
    for entry in text.split(","):
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise SystemExit(f"app.py: ARTE_AUTH entry {entry.strip()!r} is not 'user:password'.")
        pairs.append((user, password))
    return pairs


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def fill_empty_store(store, *folders: Path) -> str:
    """Import demo datasets into an empty store: `folders`, by default DEMO_FOLDERS (the first is required,
    the others are imported when present); returns what happened, in words."""
    if store.list_runs():
        return ""
    first, *more = folders or DEMO_FOLDERS
    if not first.is_dir():
        return (f"The store is empty and there is no demo dataset at {first}: launch a run in the Runs tab "
                "or with `arte run`.")
    from arte_core.store.transfer import import_parquet

    imported = [first, *(f for f in more if f.is_dir())]
    for folder in imported:
        import_parquet(store, folder)
    return f"The store was empty: imported the demo dataset from {', '.join(str(f) for f in imported)}."


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from arte_core.errors import ArteError
    from arte_core.jobs import JobManager
    from arte_core.store import Store
    from ui.app import build_app, launch_kwargs

    db = args.db or default_db_path()
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = args.port or int(os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT)
    read_only = args.read_only or env_flag("ARTE_READ_ONLY")
    runs_dir = os.environ.get("ARTE_RUNS_DIR") or str(Path(db).resolve().parent / "runs")
    auth = parse_auth(os.environ.get("ARTE_AUTH"))
    try:
        store = Store(db)
        notice = fill_empty_store(store)
    except ArteError as exc:
        print(f"app.py: error: {exc}", file=sys.stderr)
        return 2
    if notice:
        print(notice)
    if os.environ.get("SPACE_ID") and not db.startswith("/data/"):
        print("app.py: note: this Space has no persistent storage; decisions are lost when it restarts.")
    demo = build_app(store, JobManager(store, runs_dir), read_only=read_only, runs_dir=runs_dir)
    demo.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=True, show_error=True,
                quiet=True, **launch_kwargs())
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    mode = " (read-only)" if read_only else ""
    print(f"ARTE Studio{mode} running on http://{shown_host}:{port} — store {db}", flush=True)
    try:
        demo.block_thread()
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Private sandboxes for the visitors of a public studio (a Hugging Face Space, `SPACE_ID` set).

The shared store is never written by a visitor: each visitor's session reads the shared store until its
first write, which copies the store file into a folder of its own (keyed by the session's id) and goes
there; from then on that session reads and writes its copy. So the interactive core (deciding pairs,
undoing) works for everyone, and nothing anyone does changes what the next visitor sees.

`SessionStores` keeps the copies; `SessionRoutedStore` stands where the studio's tabs expect a Store and
routes every call to the store of the session that is being served (a function the UI supplies, since
only the UI knows its requests). No Gradio here.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from arte_core.errors import ArteError
from arte_core.store import Store

SPACE_ENV = "SPACE_ID"  # set by Hugging Face on every Space
MAX_SANDBOXES = 64  # the oldest visitor's copy is dropped beyond this: a public page must not fill the disk
# Store methods that write, by how the store names them: the first one a session calls copies the shared
# store for it. A prefix, not a list, so a write method added to the store later is caught too.
WRITE_PREFIXES = ("transaction", "execute", "insert", "ensure_", "mark_", "save_", "add_", "drop_", "replace_",
                  "delete_", "set_", "update_", "remove_", "import_")
SAFE_SESSION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def on_a_space(environ: dict | None = None) -> bool:
    """True when the studio runs on a Hugging Face Space (or a test says it does)."""
    import os

    return bool((environ if environ is not None else os.environ).get(SPACE_ENV, "").strip())


class SessionStores:
    """The shared store and a copy of it per session that wrote; thread-safe."""

    def __init__(self, shared: Store, root: str | Path | None = None, max_sandboxes: int = MAX_SANDBOXES):
        self.shared = shared
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="arte-sandboxes-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_sandboxes = max_sandboxes
        self._sandboxes: OrderedDict[str, Store] = OrderedDict()  # oldest first
        self._serials: dict[int, int] = {id(shared): 0}  # a number per open store, never reused
        self._next_serial = itertools.count(1)
        self._lock = threading.RLock()

    def has_sandbox(self, session: str | None) -> bool:
        with self._lock:
            return session in self._sandboxes

    def reading(self, session: str | None) -> Store:
        """The store a session reads: its copy once it wrote, else the shared one."""
        with self._lock:
            return self._sandboxes.get(session or "", self.shared)

    def writing(self, session: str | None) -> Store:
        """The session's own copy, made now if it has none. A request without a session writes nothing."""
        if not session:
            raise ArteError("this public studio records decisions per visitor, and this request belongs to no "
                            "visitor's session: reload the page and try again.")
        key = _safe_key(session)
        with self._lock:
            if session in self._sandboxes:
                self._sandboxes.move_to_end(session)
                return self._sandboxes[session]
            folder = self.root / key
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / Path(self.shared.path).name
            with self.shared._lock:  # no write of a job lands between the checkpoint and the copy
                if not self.shared.read_only:  # a read-only file has no log to fold in
                    self.shared.checkpoint()
                shutil.copyfile(self.shared.path, target)
            sandbox = Store(target)
            self._serials[id(sandbox)] = next(self._next_serial)
            self._sandboxes[session] = sandbox
            while len(self._sandboxes) > self.max_sandboxes:
                oldest, _ = next(iter(self._sandboxes.items()))
                self.discard(oldest)
            return sandbox

    def serial(self, store: Store) -> int:
        """A number naming one open store for the caches that key on (store, write_count)."""
        with self._lock:
            return self._serials.get(id(store), -1)

    def discard(self, session: str | None) -> None:
        """Close and delete a session's copy (the visitor left); a session without one is ignored."""
        with self._lock:
            sandbox = self._sandboxes.pop(session or "", None)
            if sandbox is None:
                return
            self._serials.pop(id(sandbox), None)
            sandbox.close()
            shutil.rmtree(Path(sandbox.path).parent, ignore_errors=True)

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._sandboxes)

    def close(self) -> None:
        """Close and delete every copy (the shared store stays open: its owner closes it)."""
        for session in self.sessions():
            self.discard(session)
        shutil.rmtree(self.root, ignore_errors=True)


def _safe_key(session: str) -> str:
    """A folder name from a session id (the browser chooses it, so it is checked)."""
    if not session or len(session) > 128 or not set(session) <= SAFE_SESSION_CHARS:
        raise ArteError("this request's session id is not one this studio issues; reload the page.")
    return session


class SessionRoutedStore:
    """A Store stand-in: each call goes to the store of the session being served (`current_session()`).

    Reads go to the session's copy once it has one, else to the shared store; a write method makes the
    copy first. `write_count` and `text_write_count` are made distinct per store, because the engine's
    caches key on (this object, count) and would otherwise mistake one visitor's store for another's."""

    read_only = False  # every visitor may decide: in a copy of their own

    def __init__(self, stores: SessionStores, current_session: Callable[[], str | None]):
        self._stores = stores
        self._current_session = current_session

    @property
    def stores(self) -> SessionStores:
        return self._stores

    def target(self) -> Store:
        return self._stores.reading(self._current_session())

    @property
    def path(self) -> str:
        return self.target().path

    @property
    def write_count(self) -> int:
        store = self.target()
        return (self._stores.serial(store) << 40) + store.write_count

    @property
    def text_write_count(self) -> int:
        store = self.target()
        return (self._stores.serial(store) << 40) + store.text_write_count

    def __getattr__(self, name: str) -> Any:
        session = self._current_session()
        store = self._stores.writing(session) if name.startswith(WRITE_PREFIXES) else self._stores.reading(session)
        return getattr(store, name)

"""One SQLite connection per thread, kept open, in WAL mode; read-only where the files are.

A data directory (or database file) without write permission is opened read-only, so
the commands that only look (`plan`, `history`, `orders`, `status`, `calendar`) still
work there. The decision is ours, not SQLite's: tests and containers run as root, which
ignores permission bits, so a folder someone made read-only with `chmod a-w` would
otherwise be written anyway.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
import threading
from pathlib import Path
from urllib.parse import quote

_memory_names = itertools.count()


def is_writable(path: Path) -> bool:
    """Whether `path` (a file or folder that exists) may be written. For root, who may
    write anyway, a path with no write bit at all is read-only: someone who removed them
    all (`chmod a-w`) meant it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(path, os.W_OK)


def read_only_reason(path: Path) -> str | None:
    """Why a database at `path` can only be read, or None when it can be written.
    A folder that does not exist yet is not a reason: whoever opens it creates it."""
    path = Path(path)
    if path.exists() and not is_writable(path):
        return f"the file {path} is read-only"
    # WAL mode writes beside the database (-wal, -shm), so its folder must be writable too.
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and folder.is_dir() and not is_writable(folder):
        return f"the folder {folder} is read-only"
    return None


def _read_only_uri(path: Path) -> str:
    """`mode=ro` reads the -wal file, but only where SQLite can use the -shm file beside
    it; a folder it may not write has none to offer when the last writer cleaned up.
    Then everything is in the main file, and `immutable` reads it without a -shm."""
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if pending else "&immutable=1")


class ThreadConnections:
    """Each thread (a panel session, the worker, a run) gets its own handle, reused for
    every step, so a run does not pay for opening, and checkpointing on close, per step.

    `read_only` (default: decided from the file system, see `read_only_reason`): the
    database is copied once, through a `mode=ro` connection that also reads its -wal
    file, into memory shared by every thread, and queried there with `query_only` on.
    A copy, because SQLite cannot be trusted to read a WAL database in a folder it may
    not write (it wants its -shm file) and because the code that opens a database may
    run `CREATE TABLE IF NOT EXISTS` (see `_read_only_uri` for how it is read); each face builds its services per command or per
    panel rerun, so the copy is fresh. A database that does not exist yet is an empty
    one: there is nothing recorded to show."""

    def __init__(self, path: Path, read_only: bool | None = None):
        self.path = Path(path)
        self.read_only_reason = read_only_reason(self.path) if read_only is None else (
            f"the file {self.path} was opened read-only" if read_only else None)
        self._local = threading.local()
        self._snapshot: str | None = None
        self._keeper: sqlite3.Connection | None = None  # keeps the shared copy alive
        self._lock = threading.Lock()

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def _copy(self) -> str:
        with self._lock:
            if self._snapshot is None:
                name = f"file:dca-read-only-{next(_memory_names)}?mode=memory&cache=shared"
                keeper = sqlite3.connect(name, uri=True, check_same_thread=False)
                if self.path.exists():
                    source = sqlite3.connect(_read_only_uri(self.path), uri=True)
                    try:
                        source.backup(keeper)
                    except sqlite3.Error:
                        keeper.close()
                        raise
                    finally:
                        source.close()
                self._keeper, self._snapshot = keeper, name
        return self._snapshot

    def get(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            if self.read_only:
                db = sqlite3.connect(self._copy(), timeout=30, isolation_level=None, uri=True)
                if self.path.exists():
                    db.execute("PRAGMA query_only=ON")  # the copy is never written to
            else:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

"""One writer per data dir: an advisory lock file naming its holder.

Two collectors on one data dir used to interleave their flush files and lose a third of the rows, both
exiting 0. Every command that writes history or snapshots takes ``<data dir>/lock`` first:

- the lock is an ``fcntl.flock`` on that file, so the kernel releases it when the holder dies, even by
  kill -9 — there is no "forgot to clean up" state that needs a human;
- the file holds the holder's pid, host, command and start time (JSON), so a second writer can say who
  holds it (``DataDirBusy``: one line, the CLI exits 2);
- a lock file that still names a holder although nobody holds the flock is *stale* (the holder was
  killed): it is taken over and ``stale`` says whose it was, so the caller can warn.

The file is opened with ``O_NOFOLLOW``: a symlink planted at ``lock`` is refused rather than followed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = "lock"


class DataDirBusy(Exception):
    """Another live process holds the data dir; ``str(e)`` is the one-line message."""


class DataDirLock:
    """Hold ``<data_dir>/lock`` for the life of the object (or until ``release``)."""

    def __init__(self, data_dir: str | Path, command: str = "liqmap") -> None:
        self.dir = Path(data_dir)
        self.path = self.dir / LOCK_NAME
        self.command = command
        self.fd: int | None = None
        self.stale: dict | None = None  # the previous holder's record when a stale lock was taken over

    def acquire(self) -> "DataDirLock":
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise DataDirBusy(f"{self.path}: cannot open the data-dir lock: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise DataDirBusy(f"data dir {self.dir} is in use by {describe(holder)}; stop it or pass another "
                              "--data-dir") from None
        except OSError as e:
            os.close(fd)
            raise DataDirBusy(f"{self.path}: cannot lock: {e.strerror or e}") from None
        prev = _read(fd)
        if prev:
            self.stale = prev  # we hold the flock, so whoever wrote this is gone
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except OSError:
            pass  # a full disk: the flock alone still keeps a second writer out (it just cannot be named)
        self.fd = fd
        return self

    def release(self) -> None:
        """Clear the holder record and drop the lock (a clean exit leaves no stale record behind)."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)  # closing the descriptor drops the flock
        self.fd = None

    def __enter__(self) -> "DataDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        rec = json.loads(data.decode("utf-8")) if data.strip() else {}
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        return {}


def describe(holder: dict) -> str:
    """``pid 1234 on host h (liqmap collect, since 2026-12-04 17:40:03 UTC)`` from a lock record."""
    if not holder:
        return "another liqmap process (no holder recorded)"
    since = holder.get("since")
    when = ""
    if isinstance(since, (int, float)):
        when = ", since " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} ({holder.get('command', 'liqmap')}{when})"

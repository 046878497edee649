"""One server per data folder: an OS lock on a file in it, held for the server's life.

The operating system drops the lock when the process ends, however it ends, so a killed
server never leaves a stale lock behind. Worker processes are spawned, not forked, and
Python's file descriptors are not inherited, so they never hold it either.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

LOCK_NAME = ".server.lock"


class FolderInUse(Exception):
    """Another server holds the data folder's lock."""


def _try_lock(handle: BinaryIO) -> None:
    """Take the lock without waiting; raise OSError if another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _holder(path: Path) -> str:
    """Say which process holds the lock, as far as the file tells (Windows keeps it unreadable)."""
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


class FolderLock:
    """The lock on one data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.path = self.folder / LOCK_NAME
        self._handle: BinaryIO | None = None

    def acquire(self) -> None:
        """Take the lock, or raise FolderInUse naming the folder if another server has it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        handle = os.fdopen(fd, "r+b")
        try:
            _try_lock(handle)
        except OSError:
            handle.close()
            raise FolderInUse(
                f"the data folder {self.folder} is already in use by another server{_holder(self.path)}. "
                "Stop that one first, or give this one a folder of its own with FACEGUARD_DATA_DIR."
            ) from None
        handle.seek(0)
        handle.write(str(os.getpid()).ljust(20).encode("ascii"))  # fixed width: no truncation needed
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the lock go (the file stays: removing it would race with a server starting)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

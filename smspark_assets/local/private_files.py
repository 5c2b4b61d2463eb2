"""Private folders (0700) and files (0600) for the local service's state.

The state root holds the stack's state database, DynamoDB's tables, logs, models and users' data: other
users of the machine must not read it. The service runs with a umask of 0o077, so whatever it and its
children create is private; the service's own writers also ask for the modes explicitly, so they stay
private when a caller's umask is looser (the lifecycle API creates the first folders and the log from
the user's process) and when an older version left a folder group- or world-readable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700; returns ``path``.

    Only folders this call creates get the mode (an existing parent such as the user's project folder is
    left as it is); use :func:`tighten` for folders of the state that may predate this.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # created concurrently by another thread or process
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is reduced by the umask; ask for exactly 0700
    return path


def tighten(path: Path, mode: int) -> None:
    """Remove group and world bits of an existing file or folder (one created by an older version)."""
    try:
        current = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if current & 0o077:
        os.chmod(path, mode)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (then only its group/world bits go).

    For files opened by others afterwards (SQLite makes its ``-wal``/``-shm`` files with the mode of
    the database file).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    tighten(path, FILE_MODE)


def open_private(path: Path, mode: str = "ab", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)``, creating the file with mode 0600 (``a``, ``w`` and ``x`` modes)."""
    flags = {"a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL}[mode[0]]
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:  # an existing file written before the state was private
            os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise

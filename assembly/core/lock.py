"""One writer per run folder and per sweep folder.

Every command that writes a run or a sweep folder (`run`, `resume`, `rerun` and
forks into a new folder, `sweep`, `sweep --resume`) holds an exclusive `flock` on
the folder's `.lock` file for its whole life. A second writer is refused at once
with the holder's pid; nothing waits.

`flock` belongs to the open file, so the kernel releases it when the holder exits
in any way, `kill -9` included: a lock file left behind by a dead process is just a
file, and the next writer takes it. The file is never deleted (deleting it while
another process opens it would let two writers hold two different files). Its
content (the holder's pid and command) is only for the refusal message.

The lock is advisory and local: two machines writing one folder on a network file
system are not kept apart unless the file system implements `flock` (NFSv4 does).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from assembly.core.errors import OutputPathError, StorageError, storage_error

LOCK_FILE = ".lock"


class FolderBusy(StorageError):
    """Another process is writing this folder (exit 1: try again when it is done)."""


def holder(folder: Path) -> str:
    """Who holds the folder's lock, as its lock file says (for messages)."""
    try:
        text = (folder / LOCK_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"pid {pid}" + (f", `{command[:80]}`" if command else "")


@contextlib.contextmanager
def writer_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold `folder`'s writer lock for the block (the folder is created if needed).

    Raises `FolderBusy` if another process holds it, `OutputPathError` if the
    folder's path runs into a file, `StorageError` if the OS refuses."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(f"{folder} is a file, or lies below one; a run or sweep needs a folder") from None
    except OSError as exc:
        raise storage_error(exc, "create the folder", folder) from None
    path = folder / LOCK_FILE
    try:
        # O_NOFOLLOW: a lock file planted as a symlink must not redirect the pid write.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise storage_error(exc, "lock the folder", folder) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise storage_error(exc, "lock the folder", folder) from None
            raise FolderBusy(
                f"{folder} is being written by another assembly process ({holder(folder)}); "
                "wait for it to finish, or stop it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock

"""Writing a file whole or not at all, and only where a file may be written.

Every file the tool writes at a path a user named (a report, a run's summary, a
sweep's tables and figures) goes through `write_atomic`: the bytes go to a fresh,
uniquely named temporary file beside the target, which then replaces the target in
one `rename`. A reader sees the old file or the new one, never half of either.

A rename replaces whatever has the target's name, so the target is checked first:
- a folder is refused (`report -o DIR`);
- anything that is not a regular file (a FIFO, a device such as /dev/null, a
  socket) is refused rather than replaced by a regular file;
- a path below a regular file is refused;
- a symbolic link is followed, so the file it points to is written and the link
  stays a link;
- with `protected` (a run or sweep folder), an existing file inside that folder is
  never replaced unless its name ends with one of `replaceable`: `report -o
  RUN/transcript.jsonl` cannot overwrite the run it reports on.

Refusals are `OutputPathError` (bad input, exit 2); the OS refusing the write is a
`StorageError` (I/O, exit 1).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

from assembly.core.errors import OutputPathError, storage_error

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def checked_target(path: Path, *, protected: Path | None = None, replaceable: Sequence[str] = ()) -> Path:
    """The real path a write to `path` would replace, after the checks in the module doc."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputPathError(f"{path}: a folder on this path is a file") from None
    except OSError as exc:
        raise storage_error(exc, "inspect") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputPathError(f"{path} is a folder; name a file to write")
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise OutputPathError(f"{path} is {kind}; refusing to replace it with a regular file")
    if st is None:
        _check_ancestors(path, real)
    if protected is not None and st is not None:
        owner = Path(os.path.realpath(protected))
        if real.is_relative_to(owner) and not real.name.endswith(tuple(replaceable)):
            raise OutputPathError(f"{path} is a file of {protected}; refusing to overwrite it (write elsewhere)")
    return real


def _check_ancestors(path: Path, real: Path) -> None:
    for ancestor in real.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputPathError(f"{path}: {ancestor} is a file, not a folder")
            return


def write_atomic(
    path: Path,
    data: str | bytes,
    *,
    protected: Path | None = None,
    replaceable: Sequence[str] = (),
    fsync: bool = False,
) -> Path:
    """Write `data` (text is UTF-8) to `path` atomically; return the path written.

    `fsync` makes the new content durable before it replaces the old (a rewritten
    transcript needs it; a report or a summary that can be recomputed does not)."""
    real = checked_target(path, protected=protected, replaceable=replaceable)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(f"{path}: a folder on this path is a file") from None
    except OSError as exc:
        raise storage_error(exc, "create the folder for", path) from None
    tmp = real.with_name(f".{real.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(fd, stat.S_IMODE(os.stat(real).st_mode))  # a replaced file keeps its mode
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(exc, "write", path) from None
    return real

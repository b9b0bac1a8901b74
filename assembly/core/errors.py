"""User-facing errors: one clear message, no traceback, a distinct exit code."""

from __future__ import annotations


def quoted(value: object, limit: int = 80) -> str:
    """A value as an error message quotes it: its repr, clipped, so a 100 KB mistake
    is named in one line rather than echoed whole."""
    text = repr(value)
    size = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({size:,} characters)"


class UserError(Exception):
    """Bad input from the user; the CLI prints the message and exits with `exit_code`."""

    exit_code = 2


class ScenarioError(UserError):
    """A scenario (or override) that does not validate.

    `file`, `path` (dotted field path such as `protocol.quorum`) and `line` are kept
    separately so tools and tests can check them without parsing the message.
    """

    def __init__(
        self, message: str, *, file: str | None = None, path: str | None = None, line: int | None = None
    ) -> None:
        self.file, self.path, self.line, self.reason = file, path, line, message
        where = file or "<scenario>"
        if line is not None:
            where += f":{line}"
        shown = path if path is None or len(path) <= 120 else path[:119] + "…"
        field = f" at {shown}" if shown else ""
        super().__init__(f"{where}{field}: {message}")


class ProtocolRegistryError(UserError):
    """A protocol that cannot be registered (a bad `ASSEMBLY_PROTOCOLS` entry or entry
    point), or a protocol kind that is not registered."""


class OutputPathError(UserError):
    """A path named for output that must not be written: a directory, a device or
    FIFO, a path below a regular file, or a file that belongs to a run."""


class StorageError(UserError):
    """The operating system refused a read or write (permissions, a full disk, a
    folder another process is writing): an I/O failure, exit 1."""

    exit_code = 1


def storage_error(exc: OSError, doing: str, path: object | None = None) -> StorageError:
    """One line for an OSError: what was being done, where (`path`, else the one the
    OS names), and the OS's reason."""
    target = path if path is not None else exc.filename
    where = f" {target}" if target else ""
    return StorageError(f"cannot {doing}{where}: {exc.strerror or exc}")

"""User-facing errors: one clear message, no traceback, a distinct exit code."""

from __future__ import annotations


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
        field = f" at {path}" if path else ""
        super().__init__(f"{where}{field}: {message}")


class ProtocolRegistryError(UserError):
    """A protocol that cannot be registered (a bad `ASSEMBLY_PROTOCOLS` entry or entry
    point), or a protocol kind that is not registered."""

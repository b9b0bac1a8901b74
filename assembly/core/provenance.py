"""Where a run came from: the code's git commit, the command line, the machine.

Recorded once per run in `run_started.provenance`. Package versions (`versions`)
say which releases ran; these say which checkout, which command and which host, so
a figure in a paper can be traced to the exact code and invocation behind it.

Everything here differs between two machines running the same scenario and seed,
so `provenance` is one of the keys that determinism checks and the golden
transcripts ignore (`transcript.NONDETERMINISTIC_KEYS`).

The command line is stored with secrets scrubbed: values of key-like environment
variables, key-shaped tokens, `user:password@` in URLs, and the values of options
whose name says key, token, secret or password. Keys are only ever read from the
environment (see the README), so a scrubbed command line loses nothing a rerun needs.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REDACTED = "[REDACTED]"
GIT_TIMEOUT_S = 2.0

# Environment variable names whose values are secrets (OPENAI_API_KEY, HF_TOKEN, ...).
SECRET_ENV_NAME = re.compile(r"(API_KEY|_TOKEN|_SECRET|_SECRET_KEY|PASSWORD)$", re.IGNORECASE)
# Tokens that look like provider keys wherever they appear.
KEY_SHAPES = re.compile(r"\b(?:sk|gsk|xai|hf|pk)[-_][A-Za-z0-9_\-]{8,}|AIza[A-Za-z0-9_\-]{20,}")
# `scheme://user:password@host` and `scheme://token@host`: the credentials part.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]+@")
# An option or `--set` path naming a secret (`--api-key`, `x.password=`), but not the
# NAME of the variable holding one (`--api-key-env`, `api_key_env`).
_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd)$", re.IGNORECASE)


def scrub_command(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The command line with every secret replaced by [REDACTED]."""
    env = os.environ if environ is None else environ
    secrets = sorted((v for k, v in env.items() if SECRET_ENV_NAME.search(k) and len(v) >= 6), key=len, reverse=True)
    out: list[str] = []
    redact_next = False
    for arg in argv:
        if redact_next:
            out.append(REDACTED)
            redact_next = False
            continue
        name, eq, _ = arg.partition("=")
        if arg.startswith("-") and _secret_name(name.lstrip("-")):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(arg)
                redact_next = True
            continue
        if eq and not arg.startswith("-") and _secret_name(name.rsplit(".", 1)[-1]):
            out.append(f"{name}={REDACTED}")  # a `--set path.api_key=...` value
            continue
        out.append(_scrub_text(arg, secrets))
    return out


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.replace("-", "_"))) and not name.endswith(("env", "ENV"))


def _scrub_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return KEY_SHAPES.sub(REDACTED, text)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The invocation as one shell-quoted line; `python -m assembly.cli` shows as `assembly`."""
    args = list(sys.argv if argv is None else argv)
    if args and (Path(args[0]).name == "assembly" or args[0].endswith(("assembly/cli.py", "assembly/__main__.py"))):
        args[0] = "assembly"
    return shlex.join(scrub_command(args))


@functools.lru_cache(maxsize=8)
def git_commit(cwd: str) -> tuple[str, bool] | None:
    """(commit, dirty) when `cwd` is a git checkout holding this package, else None.

    Bounded by a timeout: a slow or hung git (a network file system) must not delay
    a run, and a missing git is simply no commit."""
    package = Path(__file__).resolve().parent.parent
    try:
        top = _git(cwd, "rev-parse", "--show-toplevel")
        if top is None or not package.is_relative_to(Path(top).resolve()):
            return None
        commit = _git(cwd, "rev-parse", "HEAD")
        if commit is None:
            return None
        status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit, bool(status)


def _git(cwd: str, *args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """This process's provenance record (see the module doc)."""
    record: dict[str, Any] = {}
    git = git_commit(os.getcwd())
    if git is not None:
        record["git_commit"], record["git_dirty"] = git
    record.update(
        {
            "command": command_line(),
            "host": socket.gethostname(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
    )
    return record

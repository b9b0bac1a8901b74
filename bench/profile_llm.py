"""Where an LLM run's client-side CPU goes: pyinstrument over benchmark 2's run, per client path.

One profiled run per path of exactly what `concurrency.py` measures (N LLM members
speaking each round against the loopback server with latency L, in its own process).
Self time is charged to the library that asked for it: a built-in or standard-library
call (socket.send, json, copy, typing) counts for the nearest caller that is a
third-party package or `assembly`, while asyncio's own loop machinery is its own line.
Only shares are reported (the profiler slows everything down). Idle time waiting for
the server (epoll) is reported separately and left out of the shares.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import RESULTS, command_line, inclusive_time, machine_info, table, write_result
from concurrency import scenario
from llm_harness import PATHS, fake_server, profile, run
from pyinstrument import Profiler
from pyinstrument.frame import Frame

_SITE = re.compile(r"site-packages/([^/]+)")
IDLE = "idle (waiting in epoll)"

# Inclusive time of these assembly steps, as shares of the busy time.
STEPS: list[tuple[str, str, str]] = [
    ("rendering prompts", "FacilitatedAssembly", "prompt"),
    ("building output models", "FacilitatedAssembly", "output_model"),
    # autogen's clients run each HTTP request as a task of its own, so this is the
    # turn's own task: prompt, agent, schema, validation, not the HTTP stack.
    ("LLMMember.act (its own task)", "LLMMember", "act"),
    ("seating + building LLM members", "", "build_members"),
    ("end-of-run summary", "", "write_summary"),
]


def _package(frame: Frame) -> str | None:
    path = frame.file_path or ""
    found = _SITE.search(path)
    if found:
        name = found.group(1)
        return "sqlite3 (diskcache)" if name == "diskcache" else name.split(".")[0]
    if "/assembly/" in path:
        return "assembly"
    if "/asyncio/" in path or frame.function in ("run_forever", "_run_once"):
        return "asyncio"
    return None  # stdlib or built-in: charged to its caller


def charge(root: Frame) -> dict[str, float]:
    out: dict[str, float] = {}

    def walk(frame: Frame, owner: str) -> None:
        if frame.function in ("epoll.poll", "poll") and frame.file_path in (None, "<built-in>"):
            key = IDLE
        else:
            key = _package(frame) or owner
        own = frame.time - sum(c.time for c in frame.children)
        out[key] = out.get(key, 0.0) + own
        for child in frame.children:
            walk(child, key)

    walk(root, "other")
    return out


def steps(root: Frame) -> dict[str, float]:
    return inclusive_time(root, STEPS)


def profile_path(n: int, path: str, url: str, work: Path) -> dict[str, Any]:
    prof = profile(url, path)
    run(scenario(8, prof.name), work / f"warm-{path}", prof)
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    run(scenario(n, prof.name), work / f"run-{path}", prof)
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    assert root is not None
    (RESULTS / f"profile_llm_{path}_{n}.txt").write_text(
        profiler.output_text(time="percent_of_total"), encoding="utf-8"
    )
    charged = charge(root)
    idle = charged.pop(IDLE, 0.0)
    busy = sum(charged.values())
    return {
        "members": n,
        "path": path,
        "profiled_s": round(root.time, 3),
        "idle_share": round(idle / root.time, 4),
        "by_package": {k: round(v / busy, 4) for k, v in sorted(charged.items(), key=lambda kv: -kv[1])},
        "steps": {k: round(v / busy, 4) for k, v in steps(root).items()},
    }


def render(rows: list[dict[str, Any]]) -> str:
    packages: list[str] = []
    for r in rows:
        packages.extend(k for k, v in r["by_package"].items() if v >= 0.02 and k not in packages)
    head = ["busy CPU charged to", *[f"{r['path']} N={r['members']}" for r in rows]]
    body = [[p, *[f"{r['by_package'].get(p, 0.0):.0%}" for r in rows]] for p in packages]
    body.append(
        ["(everything below 2%)", *[f"{1 - sum(r['by_package'].get(p, 0.0) for p in packages):.0%}" for r in rows]]
    )
    steps_body = [[name, *[f"{r['steps'].get(name, 0.0):.0%}" for r in rows]] for name, _, _ in STEPS]
    idle = ["idle share of the profiled run", *[f"{r['idle_share']:.0%}" for r in rows]]
    return (
        table(head, body)
        + "\n\nassembly steps, inclusive (share of busy CPU)\n"
        + table(["step", *head[1:]], [*steps_body, idle])
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--members", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args(argv)
    rows = []
    with fake_server(args.latency) as server, tempfile.TemporaryDirectory(prefix="bench-profile-llm-") as td:
        for path in PATHS:
            rows.append(profile_path(args.members, path, server.url, Path(td)))
            print(f"  {path}: done", file=sys.stderr, flush=True)
    write_result("profile_llm", command_line(), {"latency_s": args.latency, "rows": rows}, machine_info())
    print(
        f"Where an LLM run's client CPU goes (pyinstrument; N={args.members}, L={args.latency * 1e3:.0f} ms; "
        "full trees in bench/results/profile_llm_<path>_<N>.txt)"
    )
    print(render(rows))
    return rows


if __name__ == "__main__":
    main()

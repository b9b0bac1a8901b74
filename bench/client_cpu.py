"""Benchmark: client CPU per model call, the model-call stack alone, beside its floor and the SDK it replaced.

N concurrent structured calls per round (one per member, distinct cache salts so the
cache never answers) against the loopback server (bench/latency_server.py, its own
process) with fixed latency L, for several rounds; CPU is this process's CPU time
over the warm rounds (2..R) divided by their calls. The server's CPU is not in it.

Rows, side by side in one run:
* `http1 floor`: the transport the `openai` path uses for whole answers
  (`llm/http1.py`, keep-alive connections) posting a pre-serialized body, and the
  answer parsed with json.loads: what is left with nothing of assembly above it;
* `aiohttp floor`: the same with one pooled aiohttp session, the usual asyncio
  HTTP client (and the transport of streams and proxied requests);
* `openai SDK`: `openai.AsyncOpenAI.chat.completions.create` with the same body,
  as the `openai` client path used it before: shards of 16 keep-alive connections
  per SDK client (httpcore scans its whole pool for every request, encode/httpx#3215);
* `assembly openai` / `assembly litellm`: `structured.call_structured` through
  `clients.make_client` (response cache on disk, rate-limit gate, lean transport),
  i.e. everything a member's model call costs below its agent: the request, the
  answer's parse and validation into the output type, usage, cost and the attempt
  record.

All stacks run under the collector setting of a run (`core.collector`: a higher
gen-0 threshold, the heap present at the start frozen); with Python's default, the
cyclic collector adds to every row.

Messages are realistic in size (a 1.2 kB system message, a 3 kB user message) and
differ per member; the output type is the facilitated protocol's `Speech`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import command_line, machine_info, table, write_result
from llm_harness import Server, fake_server, profile

from assembly.core.collector import collector_tuned_for_a_run
from assembly.llm.clients import make_client
from assembly.llm.response_format import structured_format
from assembly.llm.structured import call_structured
from assembly.protocols.facilitated.actions import Speech

ROUNDS = 4
SYSTEM = "You are a member of a citizens' assembly on the city budget. " * 20
USER = "Round {r}. Member {i} heard: the transit option would cut commute times; " * 40

Call = Callable[[int, int], Awaitable[Any]]
_SPEECH_FORMAT = structured_format(Speech, "json_schema")


def messages(i: int, r: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER.format(r=r, i=i)}]


async def _rounds(n: int, call: Call) -> tuple[float, int]:
    """CPU seconds of warm rounds 2..ROUNDS and the calls made in them.

    Every stack is measured under the garbage-collector setting a run uses
    (`core.collector`), since that is the setting a member's calls are made under."""
    with collector_tuned_for_a_run():
        return await _timed_rounds(n, call)


async def _timed_rounds(n: int, call: Call) -> tuple[float, int]:
    cpu = 0.0
    for r in range(1, ROUNDS + 1):
        start = time.process_time()
        await asyncio.gather(*(call(i, r) for i in range(n)))
        if r > 1:
            cpu += time.process_time() - start
    return cpu, n * (ROUNDS - 1)


def bare_body(i: int, r: int) -> bytes:
    """Member i's structured request of round r, serialized as a bare client would."""
    body = json.dumps({"model": "fake-model", "messages": messages(i, r)})
    return f'{body[:-1]},"response_format":{_SPEECH_FORMAT.encoded}}}'.encode()


def bare_http_call(session: Any, url: str) -> Call:
    """Member i's structured request of round r with nothing but HTTP: a pre-serialized
    body posted on a pooled aiohttp session, and the answer parsed with json.loads."""

    async def call(i: int, r: int) -> Any:
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=bare_body(i, r), headers=headers) as resp:
            return json.loads(await resp.read())

    return call


def bare_http1_call(url: str) -> Call:
    """`bare_http_call` on the lean transport: one `http1.Endpoint` for the URL."""
    from yarl import URL

    from assembly.llm.http1 import Endpoint

    u = URL(url)
    assert u.host is not None and u.port is not None
    endpoint = Endpoint(
        scheme=u.scheme, host=u.host, port=u.port, target=u.raw_path_qs, headers={"Content-Type": "application/json"}
    )

    async def call(i: int, r: int) -> Any:
        return json.loads((await endpoint.post(bare_body(i, r))).body)

    return call


async def http1_floor(server: Server, n: int, rep: int) -> tuple[float, int]:
    return await _rounds(n, bare_http1_call(server.url + "/chat/completions"))


async def aiohttp_floor(server: Server, n: int, rep: int) -> tuple[float, int]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        return await _rounds(n, bare_http_call(session, server.url + "/chat/completions"))


async def openai_sdk(server: Server, n: int, rep: int) -> tuple[float, int]:
    import httpx
    import openai

    fmt = dict(structured_format(Speech, "json_schema"))
    shards = [
        openai.AsyncOpenAI(
            base_url=server.url,
            api_key="no-key",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=16)
            ),
        )
        for _ in range(-(-n // 16))
    ]

    async def call(i: int, r: int) -> Any:
        return await shards[i % len(shards)].chat.completions.create(
            model="fake-model",
            messages=messages(i, r),  # type: ignore[arg-type]
            response_format=fmt,  # type: ignore[arg-type]
        )

    try:
        return await _rounds(n, call)
    finally:
        for client in shards:
            await client.close()


def assembly_path(path: str, cache_dir: Path) -> Callable[[Server, int, int], Awaitable[tuple[float, int]]]:
    from autogen_core.models import SystemMessage, UserMessage

    async def measure(server: Server, n: int, rep: int) -> tuple[float, int]:
        prof = profile(server.url, path)
        client = make_client(prof, cache_dir / f"{path}-{n}-{rep}")  # a fresh cache: no call is answered from it

        async def call(i: int, r: int) -> Any:
            messages = [SystemMessage(content=SYSTEM), UserMessage(content=USER.format(r=r, i=i), source="user")]
            result = await call_structured(client, messages, Speech, profile=prof, kind="speak", salt=f"{i}|{r}")
            if not result.ok:
                raise RuntimeError(f"call failed: {result.attempts}")
            return result

        try:
            return await _rounds(n, call)
        finally:
            await client.close()

    return measure


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256], help="N (e.g. 256 1024; 1,024 takes ~10 min)")
    ap.add_argument("--latency", type=float, default=0.2, help="L, the server's fixed latency in seconds")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    machine = machine_info()
    rows = []
    with fake_server(args.latency) as server, tempfile.TemporaryDirectory(prefix="bench-client-cpu-") as td:
        work = Path(td)
        stacks = {
            "http1 floor": http1_floor,
            "aiohttp floor": aiohttp_floor,
            "openai SDK": openai_sdk,
            "assembly openai": assembly_path("openai", work),
            "assembly litellm": assembly_path("litellm", work),
        }
        for measure in stacks.values():  # warm-up: imports and first-call caches
            asyncio.run(measure(server, 8, -1))
        for n in args.sizes:
            for name, measure in stacks.items():
                per_call = []
                for rep in range(args.reps):
                    cpu, calls = asyncio.run(measure(server, n, rep))
                    per_call.append(cpu / calls)
                rows.append({"members": n, "stack": name, "cpu_per_call_s": per_call})
                print(f"  N={n} {name}: done", file=sys.stderr, flush=True)
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    fig = {"latency_s": args.latency, "rounds": ROUNDS, "rows": rows}
    write_result("client_cpu", command_line(), fig, machine)
    print(
        f"Client CPU per model call (median of {args.reps} runs; warm rounds 2..{ROUNDS}; L = "
        f"{args.latency * 1e3:.0f} ms; load {machine['load_avg_1_5_15'][0]} before, "
        f"{machine['load_avg_after'][0]} after; goal: assembly paths <= 1 ms at N = 256)"
    )
    print(
        table(
            ["N", "stack", "CPU per call (median)", "runs"],
            [
                [
                    r["members"],
                    r["stack"],
                    f"{statistics.median(r['cpu_per_call_s']) * 1e3:.2f} ms",
                    ", ".join(f"{x * 1e3:.2f}" for x in r["cpu_per_call_s"]),
                ]
                for r in rows
            ],
        )
    )
    return fig


if __name__ == "__main__":
    main()

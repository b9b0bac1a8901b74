"""Prices without litellm: a run on the openai client path never imports it, and prices
come from the profile, else from litellm's bundled price file read as data."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from assembly.llm.cost import PRICE_FILE, cost_usd
from assembly.llm.profiles import ModelProfile
from tests.conftest import ROOT, SCENARIOS
from tests.fake_openai import FakeOpenAIServer

# Runs the CLI in this very process and reports, at exit, whether litellm was imported.
_PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print("LITELLM-IMPORTED", "litellm" in sys.modules))
runpy.run_module("assembly.cli", run_name="__main__")
"""


def test_an_openai_client_run_never_imports_litellm(tmp_path: Path) -> None:
    with FakeOpenAIServer(seed=3) as server:
        args = [
            "run",
            str(SCENARIOS / "consensus_game.yaml"),
            "--model",
            "openai/gpt-4o-mini",  # a model litellm prices, so a price is looked up
            "--api-base",
            server.base_url,
            "--client",
            "openai",
            "--members",
            "4",
            "--rounds",
            "1",
            "--out",
            str(tmp_path / "run"),
            "-q",
        ]
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, *args],
            cwd=ROOT,
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        assert server.request_count > 0
    assert "LITELLM-IMPORTED False" in out.stdout, out.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["totals"]["cost_usd"] > 0  # priced without litellm


def _bundled_prices() -> dict[str, dict[str, object]]:
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_FILE
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_priced_model_costs_what_the_price_file_says() -> None:
    entry = _bundled_prices()["gpt-4o-mini"]
    profile = ModelProfile(name="mini", model="openai/gpt-4o-mini")
    expected = 1234 * float(entry["input_cost_per_token"]) + 567 * float(entry["output_cost_per_token"])  # type: ignore[arg-type]
    assert expected > 0
    assert abs(cost_usd(profile, 1234, 567) - expected) < 1e-12


def test_profile_prices_win_and_unknown_models_are_free() -> None:
    priced = ModelProfile(name="deal", model="openai/gpt-4o-mini", price_per_1k_input=0.5, price_per_1k_output=2.0)
    assert abs(cost_usd(priced, 2000, 1000) - (0.5 * 2 + 2.0 * 1)) < 1e-12
    local = ModelProfile(name="local", model="openai/no-such-model-anywhere", api_base="http://127.0.0.1:1/v1")
    assert cost_usd(local, 10_000, 10_000) == 0.0

"""Same seed, same transcript on any machine, not only on the same one.

numpy picks kernels by CPU at run time: float64 `exp` has an AVX-512 kernel whose
last bit differs from libm's, and OpenBLAS sums a matrix product in an order of its
own for each CPU family. A sim member's opinion fed through either changes in the
last bit, and the dynamics carry that on to other scores, positions and votes: the
golden transcripts recorded on an AMD machine differed from a run on an AVX-512
Intel one. Here the same runs are made twice in real subprocesses, once as this
machine does them and once with numpy's run-time SIMD dispatch switched off
(`NPY_DISABLE_CPU_FEATURES`) and OpenBLAS held to its generic kernel
(`OPENBLAS_CORETYPE=Prescott`), the arithmetic of the least capable x86-64, and
the transcripts must be equal.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.golden.record import ROOT, record
from tests.test_golden import _comparable

# Both sim paths that sum heard scores: the confidence-bound mask, and the trust-
# weighted mean (no bound), on a small world where members hear different speakers.
CASES = {
    "bounded": ["scenarios/citizens_assembly.yaml", "--rounds", "6", "--set", "protocol.stall=null"],
    "trust_weighted": [
        "scenarios/citizens_assembly.yaml",
        "--rounds",
        "6",
        "--set",
        "topology.kind=small_world",
        "--set",
        "members.sim.confidence_bound=null",
        "--set",
        "members.sim.trust={in_role: 1.0, out_role: 0.35}",
        "--set",
        "protocol.stall=null",
    ],
}


def _dispatched_features() -> list[str]:
    """numpy's run-time dispatch targets this CPU has: what numpy may choose
    beyond its build's baseline, and what `NPY_DISABLE_CPU_FEATURES` switches off."""
    code = (
        "import json, numpy._core._multiarray_umath as m;"
        "print(json.dumps([f for f in m.__cpu_dispatch__ if m.__cpu_features__.get(f)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_run_does_not_depend_on_the_cpus_numeric_kernels(tmp_path: Path, name: str) -> None:
    generic = {**os.environ, "OPENBLAS_CORETYPE": "Prescott"}
    features = _dispatched_features()
    if features:
        generic["NPY_DISABLE_CPU_FEATURES"] = " ".join(features)
    native = record(name, CASES[name], tmp_path / "native")
    baseline = record(name, CASES[name], tmp_path / "generic", env=generic)
    a = native.read_text(encoding="utf-8").splitlines()
    b = baseline.read_text(encoding="utf-8").splitlines()
    assert len(a) > 100  # six rounds of speeches and votes
    assert [_comparable(x) for x in a] == [_comparable(x) for x in b]


def _numerics(env: dict[str, str]) -> dict[str, list[str]]:
    code = (
        "import json, numpy as np, numpy._core._multiarray_umath as m;"
        "from threadpoolctl import threadpool_info;"
        "blas = [i.get('architecture') for i in threadpool_info() if i.get('internal_api') == 'openblas'];"
        "print(json.dumps({'on': [f for f in m.__cpu_dispatch__ if m.__cpu_features__.get(f)], 'blas': blas}))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return dict(json.loads(done.stdout))


def test_the_generic_settings_reach_numpy() -> None:
    """The comparison is not vacuous: in the child, numpy dispatches to none of the
    CPU's extra features, and OpenBLAS runs another kernel than it would here."""
    features = _dispatched_features()
    native = _numerics(dict(os.environ))
    generic = _numerics({**os.environ, "OPENBLAS_CORETYPE": "Prescott", "NPY_DISABLE_CPU_FEATURES": " ".join(features)})
    assert native["on"] == features
    assert generic["on"] == []
    assert len(native["blas"]) == len(generic["blas"]) == 1
    if platform.machine() in ("x86_64", "AMD64"):  # Prescott is an x86 kernel name
        assert generic["blas"] != native["blas"] or native["blas"] == ["Katmai"]  # OpenBLAS's generic x86 kernel

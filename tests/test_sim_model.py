"""The sim policy against the opinion-dynamics models it claims to implement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assembly.core.events import Disclosure, Turn
from tests.helpers import run, tiny

OPTIONS = ["A", "B"]


def _speeches(events: list[Any], r: int) -> dict[str, np.ndarray]:
    return {
        t.member: np.array([t.action["scores"][o] for o in OPTIONS])
        for t in events
        if isinstance(t, Turn) and t.round == r and t.phase == "speak" and t.status == "ok"
    }


def _no_vote_no_noise(n: int, rounds: int, **extra: Any) -> Any:
    return tiny(
        n,
        **{
            "rounds": rounds,
            "protocol.first_vote_round": 10**3,
            "members.sim.speech_noise": 0.0,
            "population.roles.0.value_noise": 0.8,
            **extra,
        },
    )


@pytest.mark.parametrize("lam", [0.3, 0.7])
def test_friedkin_johnsen_equilibrium(tmp_path: Path, lam: float) -> None:
    """With everyone hearing everyone and no bound, stated scores converge to
    x* = (I - ΛW)^-1 (I - Λ) x0 with W uniform, Λ = λI, x0 the first-round scores."""
    n = 9
    sc = _no_vote_no_noise(n, 40, **{"members.sim.susceptibility": lam, "members.sim.confidence_bound": None})
    _, events = run(sc, tmp_path / "run")
    ids = [f"member_{i}" for i in range(n)]
    x0 = np.stack([_speeches(events, 1)[m] for m in ids])
    W = np.full((n, n), 1.0 / n)
    L = lam * np.eye(n)
    expected = np.linalg.solve(np.eye(n) - L @ W, (np.eye(n) - L) @ x0)
    final = np.stack([_speeches(events, 40)[m] for m in ids])
    assert np.abs(x0 - x0.mean(axis=0)).max() > 0.05, "anchors must differ for the test to mean anything"
    np.testing.assert_allclose(final, expected, atol=2e-3)


def test_hegselmann_krause_bound_keeps_camps_apart(tmp_path: Path) -> None:
    """Two camps farther apart than the confidence bound never hear each other,
    while without a bound they pull together."""

    def camps(bound: float | None) -> float:
        sc = tiny(
            8,
            **{
                "rounds": 15,
                "protocol.first_vote_round": 10**3,
                "members.sim.speech_noise": 0.0,
                "members.sim.susceptibility": 0.9,
                "members.sim.confidence_bound": bound,
                "population.roles": [
                    {"name": "pro", "share": 0.5, "values": {"x": 1.0}, "value_noise": 0.0},
                    {"name": "con", "share": 0.5, "values": {"x": -1.0}, "value_noise": 0.0},
                ],
            },
        )
        _, events = run(sc, tmp_path / f"run-{bound}")
        seated = next(e for e in events if getattr(e, "type", "") == "seated")
        role = {m.id: m.role for m in seated.members}
        last = _speeches(events, 15)
        pro = np.mean([v[0] for m, v in last.items() if role[m] == "pro"])
        con = np.mean([v[0] for m, v in last.items() if role[m] == "con"])
        return float(pro - con)

    assert camps(0.2) > 0.9  # anchors are ~0.998 vs ~0.002: the gap survives
    assert camps(None) < 0.3  # everyone averages everyone


def test_disclosed_fact_changes_listeners_valuation(tmp_path: Path) -> None:
    """One member holds a fact that strongly favours B; once disclosed, everyone's
    support for B rises, and nobody's did before."""
    sc = _no_vote_no_noise(
        6,
        4,
        **{
            "members.sim.susceptibility": 0.0,
            "members.sim.disclosure_rate": 1.0,
            "facts": [
                {"id": "f", "text": "B is much better than it looks.", "effects": {"B": 2.0}, "holders": {"count": 1}}
            ],
        },
    )
    _, events = run(sc, tmp_path / "run")
    holder = next(e.member for e in events if isinstance(e, Disclosure))
    r1, r2 = _speeches(events, 1), _speeches(events, 2)
    rises = [r2[m][1] - r1[m][1] for m in r1 if m != holder]
    assert all(rise > 0 for rise in rises)
    assert float(np.mean(rises)) > 0.2


def test_shared_bias_makes_repeated_facts_more_likely(tmp_path: Path) -> None:
    """Stasser–Titus: a fact already in the record is mentioned more readily."""

    def mentions(bias: float) -> int:
        sc = _no_vote_no_noise(
            20,
            6,
            **{
                "members.sim.disclosure_rate": 0.1,
                "members.sim.shared_bias": bias,
                "facts": [{"id": "common", "text": "Common knowledge.", "holders": "all"}],
            },
        )
        _, events = run(sc, tmp_path / f"run-{bias}")
        return sum(isinstance(e, Disclosure) for e in events)

    assert mentions(5.0) > mentions(1.0)

"""Bad scenarios fail before anything runs: exit 2, one clear line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assembly.core.errors import ScenarioError
from assembly.scenario.loading import load_scenario, parse_override
from tests.conftest import SCENARIOS, run_cli


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


CASES = {
    "yaml_syntax": (lambda t: _replace(t, "  max_rounds: 8", "  max_rounds: [8"), "YAML syntax error", None),
    "unknown_key": (lambda t: _replace(t, "  quorum: 0.6", "  quorom: 0.6"), "unknown key 'quorom'", "protocol.quorom"),
    "wrong_type": (lambda t: _replace(t, "  max_rounds: 8", "  max_rounds: many"), "integer", "protocol.max_rounds"),
    "out_of_range": (
        lambda t: _replace(t, "  quorum: 0.6", "  quorum: 1.5"),
        "less than or equal to 1",
        "protocol.quorum",
    ),
    "unknown_option_ref": (
        lambda t: _replace(t, "effects: {ev_subsidies: -0.6}", "effects: {ev_subsidy: -0.6}"),
        "did you mean 'ev_subsidies'",
        "facts.3.effects",
    ),
    "unknown_role_susceptibility": (
        lambda t: _replace(t, "    susceptibility: 0.4", "    susceptibility_by_role: {commuters: 0.2}"),
        "did you mean 'commuter'",
        "members.sim.susceptibility_by_role",
    ),
    "susceptibility_out_of_range": (
        lambda t: _replace(t, "    susceptibility: 0.4", "    susceptibility_by_role: {retiree: 1.2}"),
        "less than or equal to 1",
        "members.sim.susceptibility_by_role.retiree",
    ),
    "own_role_untrusted": (
        lambda t: _replace(t, "    susceptibility: 0.4", "    trust: {in_role: 0, out_role: 1}"),
        "greater than 0",
        "members.sim.trust.in_role",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scenario_gives_one_clean_message(case: str, tmp_path: Path, scenario_text: str) -> None:
    mutate, expected, path = CASES[case]
    bad = mutate(scenario_text)
    f = _write(tmp_path, bad)
    res = run_cli("run", str(f), "--out", str(tmp_path / "run"))
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    message = " ".join(lines)
    assert "Traceback" not in res.stderr + res.stdout
    assert str(f) in message.replace("\n", "")
    assert expected in message
    if path:
        assert f"at {path}" in message
    assert not (tmp_path / "run").exists(), "nothing may run or be written for a bad scenario"


def test_error_names_the_line(tmp_path: Path, scenario_text: str) -> None:
    bad = _replace(scenario_text, "  quorum: 0.6", "  quorum: 1.5")
    f = _write(tmp_path, bad)
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    assert info.value.path == "protocol.quorum"
    assert info.value.line == _line_of(bad, "quorum: 1.5")


def test_syntax_error_line(tmp_path: Path, scenario_text: str) -> None:
    bad = _replace(scenario_text, "  max_rounds: 8", "  max_rounds: [8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, bad))
    assert info.value.line is not None
    assert abs(info.value.line - _line_of(bad, "max_rounds: [8")) <= 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "file is empty"),
        ("# only a comment\n", "file is empty"),
        ("- a\n- b\n", "this file is a list"),
        ("just a string\n", "a single value"),
    ],
)
def test_empty_and_non_mapping_files(tmp_path: Path, text: str, expected: str) -> None:
    res = run_cli("validate", str(_write(tmp_path, text)))
    assert res.returncode == 2
    assert expected in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_file(tmp_path: Path) -> None:
    res = run_cli("run", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2
    assert "no such file" in res.stderr and "nope.yaml" in res.stderr


def test_bad_override_is_reported_as_override(tmp_path: Path) -> None:
    res = run_cli("validate", str(SCENARIOS / "citizens_assembly.yaml"), "--set", "protocol.quorum=2")
    assert res.returncode == 2
    assert "protocol.quorum" in res.stderr and "command-line override" in res.stderr


def test_validate_accepts_every_shipped_scenario() -> None:
    for f in sorted(SCENARIOS.glob("*.yaml")):
        res = run_cli("validate", str(f))
        assert res.returncode == 0, (f, res.stderr)
        assert "ok" in res.stdout


def test_overrides_reach_the_scenario() -> None:
    sc = load_scenario(
        SCENARIOS / "citizens_assembly.yaml",
        {"members": 40, "rounds": 3, "seed": 99, "turn_timeout": 2.5, "protocol.decision_rule": {"kind": "unanimity"}},
    )
    assert (sc.population.size, sc.protocol.max_rounds, sc.seed, sc.protocol.turn_timeout_s) == (40, 3, 99, 2.5)
    assert sc.protocol.decision_rule.kind == "unanimity"


def test_huge_values_are_bounded(tmp_path: Path) -> None:
    for override in ("members=1000000", "rounds=1000000"):
        key, value = parse_override(override)
        with pytest.raises(ScenarioError) as info:
            load_scenario(SCENARIOS / "citizens_assembly.yaml", {key: value})
        assert "less than or equal" in info.value.reason


def test_alias_bomb_is_rejected(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "\n".join(lines) + "\n"))
    assert "nodes" in info.value.reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_text_gives_clean_error_or_scenario(tmp_path: Path, text: str) -> None:
    f = tmp_path / "fuzz.yaml"
    f.write_text(text, encoding="utf-8")
    try:
        load_scenario(f)
    except ScenarioError as exc:
        assert str(exc).startswith(str(f))


_scalars = st.one_of(
    st.integers(-(10**9), 10**9), st.floats(allow_nan=True), st.text(max_size=20), st.booleans(), st.none()
)
_paths = st.sampled_from(
    [
        "protocol.quorum",
        "protocol.max_rounds",
        "population.size",
        "seed",
        "members",
        "topology.kind",
        "members.sim.susceptibility",
        "protocol.decision_rule.kind",
        "options.0.id",
        "facts.1.holders",
        "population.roles.0.share",
        "nonsense.path",
        "protocol.stall.rounds",
        "options.99.id",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_paths, _scalars, max_size=3))
def test_any_override_gives_clean_error_or_scenario(overrides: dict[str, object]) -> None:
    try:
        sc = load_scenario(SCENARIOS / "citizens_assembly.yaml", overrides)
    except ScenarioError as exc:
        assert "citizens_assembly.yaml" in str(exc)
    else:
        assert sc.population.size >= 1


def test_hundred_megabyte_yaml_is_refused_before_parsing(tmp_path: Path) -> None:
    f = tmp_path / "huge.yaml"
    with open(f, "w") as fh:
        fh.write("name: huge\nquestion: q\nfacts:\n")
        chunk = "  - {id: f, text: " + "x" * 1000 + "}\n"
        for _ in range(100_000):
            fh.write(chunk)
    assert f.stat().st_size > 100_000_000
    res = run_cli("validate", str(f))
    assert res.returncode == 2
    assert "MB" in res.stderr and "limited" in res.stderr and "Traceback" not in res.stderr

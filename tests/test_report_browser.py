"""The HTML report, rendered in a real headless Chromium.

Skipped (with the reason) only where Chromium or its driver is absent; in CI
(`CI` set) a missing browser is a failure, so the check cannot silently vanish.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assembly.core.events import Seated, SeatedMember, Turn
from assembly.core.member import Request, TurnResult
from assembly.core.view import View
from assembly.inspection.report import write
from assembly.protocols.facilitated.actions import Ballot, Speech
from tests.conftest import run_cli
from tests.helpers import run, scenario

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> [bold]not markup[/]"


def _missing() -> str | None:
    for p in (CHROMIUM, CHROMEDRIVER):
        if not p.exists():
            return f"{p} not found (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="assembly-chromium-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Hostile:
    def __init__(self, seat: SeatedMember) -> None:
        self.id = seat.id

    async def act(self, view: View, request: Request) -> TurnResult:
        options = [o.id for o in view.options]
        if request.action is Speech:
            speech = Speech(message=HOSTILE, position=options[0], scores={o: 0.5 for o in options}, disclose=[])
            return TurnResult(speech)
        return TurnResult(Ballot(abstain=True))


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def _open(driver: Any, page: Path, shot: Path) -> None:
    driver.get(page.resolve().as_uri())
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 120, 12000))
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000, "the screenshot is empty"


def test_run_report_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    sc = scenario("citizens_assembly", **{"members.sim.faults.timeout_rate": 0.1, "rounds": 4})
    summary, events = run(sc, tmp_path / "run", overrides={"member_2": Hostile})
    page = tmp_path / "report.html"
    res = run_cli("report", str(tmp_path / "run"), "-o", str(page))
    assert res.returncode == 0, res.stderr
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must not load anything"

    _open(browser, page, tmp_path / "report.png")
    assert _errors(browser) == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - an injected script would have raised an alert

    outcome = browser.find_element(By.ID, "outcome").text
    assert summary["outcome"].replace("_", " ") in outcome
    assert "every figure matches the transcript" in outcome
    rounds = summary["rounds"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline ol.timeline > li")) == rounds
    seated = next(e for e in events if isinstance(e, Seated))
    matrix_rows = browser.find_elements(By.CSS_SELECTOR, "#position-matrix tbody tr")
    assert len(matrix_rows) == len(seated.members)
    assert len(matrix_rows[0].find_elements(By.CSS_SELECTOR, "td.cell")) == rounds
    timeouts = sum(1 for e in events if isinstance(e, Turn) and e.status == "timeout")
    assert timeouts > 0, "precondition: the run has liveness events to show"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#liveness-table tbody tr td.fail")) == timeouts
    assert browser.find_elements(By.CSS_SELECTOR, "#disclosure-table tbody tr")
    for chart in ("convergence-chart", "liveness-chart", "disclosure-chart"):
        img = browser.find_element(By.CSS_SELECTOR, f"#{chart} img")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 300
    table = browser.find_element(By.ID, "figures-table").text
    assert "idea similarity" in table and "dispersion" in table
    # Where the run came from (run_started.provenance): host, CPUs, Python, command.
    started = next(e for e in events if type(e).__name__ == "RunStarted")
    provenance = browser.find_element(By.ID, "provenance").text
    assert started.provenance and started.provenance["host"] in provenance
    assert f"Python {started.provenance['python']}" in provenance and started.provenance["command"] in provenance

    # The hostile message is on the page as text, not as markup.
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>alert(1)</script>" in body
    assert browser.execute_script("return document.scripts.length") == 0


def test_sweep_report_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from assembly.inspection.report_html import pyplot as _pyplot

    sweep = tmp_path / "sweep"
    (sweep / "figures").mkdir(parents=True)
    (sweep / "summary.csv").write_text(
        "members,runs,valid_rate,valid_lo,valid_hi\n8,10,0.8,0.49,0.943\n16,10,0.6,0.313,0.832\n32,10,0.3,0.108,0.603\n"
    )
    (sweep / "results.csv").write_text("members,seed,outcome\n" + "".join(f"8,{s},valid_decision\n" for s in range(10)))
    plt = _pyplot()
    fig, ax = plt.subplots()
    ax.plot([8, 16, 32], [0.8, 0.6, 0.3])
    fig.savefig(sweep / "figures" / "valid_rate.png")
    fig.savefig(sweep / "figures" / "valid_rate.svg")
    fig.savefig(sweep / "figures" / "only_svg.svg")
    plt.close(fig)
    page = tmp_path / "sweep.html"
    write(sweep, page)

    _open(browser, page, tmp_path / "sweep.png")
    assert _errors(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#summary-table tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["8", "16", "32"]
    # A rate and its 95% interval read as one column.
    assert rows[0].find_elements(By.TAG_NAME, "td")[2].text == "0.8 [0.49, 0.943]"
    images = browser.find_elements(By.CSS_SELECTOR, "#sweep-figures img")
    assert len(images) == 2  # the PNG is preferred over its SVG twin; a lone SVG is kept
    for img in images:
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100


SHOTS = os.environ.get("ASSEMBLY_SCREENSHOTS")  # keep the screenshots here, to look at them


def _shot(tmp_path: Path, name: str) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_who_won_who_lost_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    sc = scenario("split_51_49", **{"members": 20, "protocol.decision_rule": {"kind": "veto_by_consumption"}})
    summary, _ = run(sc, tmp_path / "run")
    page = write(tmp_path / "run", tmp_path / "report.html")
    _open(browser, page, _shot(tmp_path, "who_won.png"))
    assert _errors(browser) == []
    welfare = summary["welfare"]
    head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#welfare-table thead th")]
    assert len(head) == 1 + len(welfare["outcomes"])
    assert summary["decision"] in head[1] and "this assembly's decision" in head[1]
    rows = browser.find_elements(By.CSS_SELECTOR, "#welfare-table tbody tr")
    by_role = {r.find_elements(By.TAG_NAME, "td")[0].text.split(" (")[0]: r for r in rows}
    for role, count in welfare["roles"].items():
        cells = by_role[role].find_elements(By.TAG_NAME, "td")
        utility = welfare["outcomes"]["assembly"]["utility_by_role"][role]
        assert f"({count})" in cells[0].text and f"{utility:.3f}" in cells[1].text
    assert browser.find_elements(By.CSS_SELECTOR, "#fidelity-table tbody tr")


def test_sweep_report_shows_the_frontier_figure(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from assembly.sweeps.executors import LocalExecutor
    from assembly.sweeps.sweep import load_sweep, run_sweep
    from tests.conftest import ROOT

    spec = (ROOT / "configs" / "sweeps" / "rules_vs_welfare.yaml").read_text()
    spec = spec.replace("../../scenarios/split_51_49.yaml", str(ROOT / "scenarios" / "split_51_49.yaml"))
    spec = spec.replace("members: [10, 20, 50, 100]", "members: [10, 20]").replace("seeds: 8", "seeds: 2")
    (tmp_path / "study.yaml").write_text(spec)
    run_sweep(load_sweep(tmp_path / "study.yaml"), tmp_path / "sweep", LocalExecutor(2))
    page = write(tmp_path / "sweep", tmp_path / "sweep.html")
    _open(browser, page, _shot(tmp_path, "frontier.png"))
    assert _errors(browser) == []
    img = browser.find_element(By.CSS_SELECTOR, "#figure-liveness-fairness img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 1000
    assert "liveness–fairness frontier" in browser.find_element(By.CSS_SELECTOR, "#figure-liveness-fairness").text
    head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#summary-table thead th")]
    assert "welfare_assembly_worst_role_mean" in head and "welfare_gap_borda_worst_role_mean" in head


def test_a_real_sweep_report_orders_figures_by_the_research_question(browser: Any, tmp_path: Path) -> None:
    """Outcomes, then causes, then convergence, then cost; nothing empty is shown."""
    from selenium.webdriver.common.by import By

    from tests.conftest import SCENARIOS

    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"name: order\nscenario: {SCENARIOS / 'citizens_assembly.yaml'}\ngrid:\n  members: [12, 24, 48]\n"
        "set:\n  rounds: 4\nseeds: 4\nconcurrency: 2\n"
    )
    out = tmp_path / "out"
    done = run_cli("sweep", str(spec), "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    page = write(out, tmp_path / "sweep.html")
    _open(browser, page, tmp_path / "sweep-real.png")
    assert _errors(browser) == []
    ids = [f.get_attribute("id") for f in browser.find_elements(By.CSS_SELECTOR, "#sweep-figures figure")]
    # The citizens' assembly chooses among options, so its sweeps also draw the
    # liveness–fairness frontier, after convergence and before any cost.
    assert ids == [
        "figure-outcome-rates",
        "figure-liveness",
        "figure-convergence",
        "figure-rounds-to-decision",
        "figure-liveness-fairness",
    ]
    # sim members call no model: no tokens-and-cost figure at all (not an empty one)
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#sweep-figures figcaption")]
    assert captions == [
        "outcome rates",
        "liveness loss",
        "convergence by round",
        "rounds to decision",
        "liveness–fairness frontier",
    ]
    alts = [i.get_attribute("alt") for i in browser.find_elements(By.CSS_SELECTOR, "#sweep-figures img")]
    assert "95% Wilson intervals" in alts[1] and "by cause" in alts[1]  # the caption, as alternative text
    assert "docs/figures.md" in browser.find_element(By.ID, "sweep-figures").text
    for img in browser.find_elements(By.CSS_SELECTOR, "#sweep-figures img"):
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 300


def test_a_folder_that_is_neither_run_nor_sweep_is_a_clear_error(tmp_path: Path) -> None:
    res = run_cli("report", str(tmp_path), "-o", str(tmp_path / "r.html"))
    assert res.returncode == 2
    assert "no transcript here" in res.stderr and "sweep folder" in res.stderr


def _shipped() -> list[str]:
    from assembly.scenario.loading import load_scenario
    from tests.conftest import SCENARIOS

    return [p.stem for p in sorted(SCENARIOS.glob("*.yaml")) if load_scenario(p).members.policy == "sim"]


@pytest.mark.parametrize("name", [*_shipped(), "llm"])
def test_reports_of_every_shipped_scenario_and_an_llm_run_render(browser: Any, tmp_path: Path, name: str) -> None:
    from selenium.webdriver.common.by import By

    if name == "llm":
        from assembly.llm.member import factory_for
        from assembly.llm.profiles import ModelProfile
        from assembly.llm.setup import LLMSetup
        from tests.fake_openai import FakeOpenAIServer

        with FakeOpenAIServer(seed=9) as srv:
            profile = ModelProfile(
                name="report-fake",
                model="openai/fake-model",
                client="openai",
                api_base=srv.base_url,
                timeout_s=30.0,
                retries=2,
                max_concurrent=32,
            )
            sc = scenario(
                "consensus_game",
                **{"members": 4, "rounds": 2, "members.policy": "llm", "members.profile": profile.name},
            )
            summary, _ = run(sc, tmp_path / "run", factory=factory_for(LLMSetup(profiles={profile.name: profile})))
    else:
        summary, _ = run(scenario(name), tmp_path / "run")
    page = write(tmp_path / "run", tmp_path / "report.html")
    _open(browser, page, tmp_path / "report.png")
    assert _errors(browser) == []
    outcome = browser.find_element(By.ID, "outcome").text
    assert "every figure matches the transcript" in outcome
    if name == "llm":
        assert f"{summary['totals']['calls']} (0 cached)" in outcome  # model calls are reported
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline ol.timeline > li")) == summary["rounds"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#position-matrix tbody tr")) == summary["members"]
    img = browser.find_element(By.CSS_SELECTOR, "#convergence-chart img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 300


def test_consensus_game_report_shows_stop_votes_and_byzantine_agents(browser: Any, tmp_path: Path) -> None:
    """The consensus game's rounds show stop votes against the 2/3 threshold (never an
    assembly's "quorum met" or "leading" badge), its header counts agents and Byzantine
    agents from the seating, and the member x round matrix marks the Byzantine agents."""
    from math import ceil

    from selenium.webdriver.common.by import By

    sc = scenario("consensus_game", **{"members": 12, "protocol.byzantine": 4, "rounds": 6})
    summary, events = run(sc, tmp_path / "run")
    page = write(tmp_path / "run", tmp_path / "report.html")
    _open(browser, page, tmp_path / "report.png")
    assert _errors(browser) == []

    seated = next(e for e in events if isinstance(e, Seated))
    byzantine = {m.id for m in seated.members if m.private.get("byzantine")}
    assert len(seated.members) == 12 and len(byzantine) == 4, "precondition: the seating the test asks for"
    assert "12 agents, 4 Byzantine" in browser.find_element(By.ID, "run-header").text

    needed = ceil(2 * 12 / 3)  # the game's default threshold: 2/3 of ALL agents
    timeline = browser.find_elements(By.CSS_SELECTOR, "#timeline ol.timeline > li")
    assert len(timeline) == summary["rounds"]
    for item in timeline:
        r = int(item.get_attribute("id").removeprefix("round-"))
        stops = sum(
            1
            for e in events
            if isinstance(e, Turn)
            and e.round == r
            and (e.action or {}).get("kind") == "stop_vote"
            and e.action.get("vote") == "stop"
        )
        badges = [b.text for b in item.find_elements(By.CSS_SELECTOR, ".badge")]
        assert f"stop votes {stops}/12 ({needed} needed)" in badges
        assert not any("quorum" in b or "leading" in b for b in badges), badges

    marked = set()
    for row in browser.find_elements(By.CSS_SELECTOR, "#position-matrix tbody tr"):
        first = row.find_element(By.CSS_SELECTOR, "td")
        if first.find_elements(By.CSS_SELECTOR, ".member-mark"):
            assert first.find_element(By.CSS_SELECTOR, ".member-mark").text == "Byzantine"
            marked.add(first.text.split()[0])
    assert marked == byzantine

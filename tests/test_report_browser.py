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

    # The hostile message is on the page as text, not as markup.
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>alert(1)</script>" in body
    assert browser.execute_script("return document.scripts.length") == 0


def test_sweep_report_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from assembly.inspection.report import _pyplot

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
    assert "liveness fairness" in browser.find_element(By.CSS_SELECTOR, "#figure-liveness-fairness").text
    head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#summary-table thead th")]
    assert "welfare_assembly_worst_role_mean" in head and "welfare_gap_borda_worst_role_mean" in head


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

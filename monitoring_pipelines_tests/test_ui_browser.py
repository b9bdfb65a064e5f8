"""The Dagster UI on the demo's instance, as a user sees it in a browser (headless Chromium, docs/ui.md).

The demo is the session's 30-day demo as it stood after day 10 (conftest ``demo_month``; day 8 is the broken
feature pipeline): `dagster-webserver` serves a copy of that Dagster instance on 127.0.0.1 and each test opens
one page and waits for the text a user must see there. A missing element fails the test naming it; every page is saved as a PNG in $MONITORING_UI_SCREENSHOTS (default: a temporary folder; set it to
docs/screenshots to refresh the pictures the README and docs/ui.md show).

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian packages chromium and chromium-driver); Selenium is
pointed at both explicitly, so Selenium Manager never downloads a browser. Without them the tests are skipped,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitoring_pipelines.defs import names as n
from monitoring_pipelines_tests.state_copies import copy_state

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS_ENV = "MONITORING_UI_SCREENSHOTS"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
MODEL = "adult_income"
DAYS = 10
BROKEN_DAY = "2026-01-08"  # the feature pipeline break: occupation is null on every request
WAIT = 120  # seconds for one element: the UI queries a SQLite instance on a shared 2-core machine
_ENV = ("MONITORING_STORE_URL", "MLFLOW_TRACKING_URI", "MONITORING_PLANS_DIR", "MONITORING_REPORTS_URL", "DAGSTER_HOME")


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser test needs headless Chromium: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven through the system chromedriver (checked first: without it nothing else runs)."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not os.access(binary, os.X_OK):
            _unavailable(f"{binary} not found (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        _unavailable(f"selenium is not installed: {exc}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # the page itself is 1600x1000 (--window-size would count the window's frame): the screenshots' size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1600, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
    )
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_instance(demo_month, tmp_path_factory):
    """The session's 30-day demo as a 10-day demo leaves it: a copy of its Dagster instance as it stood after
    day 10 (the webserver writes to its instance), beside the demo's MONITORING_HOME (its reports)."""
    assert list(demo_month.result_after(DAYS).failed_runs) == [BROKEN_DAY]
    dagster_home = tmp_path_factory.mktemp("ui-demo") / "dagster_home"
    copy_state(demo_month.snapshots[DAYS] / "dagster_home", dagster_home)
    return {"MONITORING_HOME": str(demo_month.home), "DAGSTER_HOME": str(dagster_home)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def webserver(demo_instance, tmp_path_factory):
    """`dagster-webserver` on the demo's instance, in its own process group (it starts the code server as a
    child); killed by process group at the end: SIGTERM, then SIGKILL (a webserver started from a
    non-interactive shell may ignore SIGTERM)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env.update(demo_instance)
    log_path = tmp_path_factory.mktemp("webserver") / "webserver.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dagster-webserver exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"dagster-webserver not answering {base}/server_info after 300 s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(1)
        yield base
    finally:
        pgid = proc.pid  # start_new_session: the webserver leads its own process group
        os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
        deadline = time.monotonic() + 30
        while _group_alive(pgid) and time.monotonic() < deadline:  # children are reaped by init
            time.sleep(0.5)
        assert not _group_alive(pgid), f"processes of dagster-webserver group {pgid} survived SIGKILL"


class Page:
    """The browser on one page of the UI: open it, wait for what a user must see there, save a picture."""

    def __init__(self, driver, base: str, scratch: Path):
        self.driver, self.base, self.scratch = driver, base, scratch

    def open(self, path: str) -> Page:
        self.driver.get(self.base + path)
        return self

    def text(self) -> str:
        """The page's visible text, as a user reads it (hidden elements excluded)."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def _wait(self, what, condition, timeout: float = WAIT):
        """``condition()``'s first truthy value; else fail with ``what`` (a text, or a function giving it)."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=1,  # React may replace an element we hold
                ignored_exceptions=(StaleElementReferenceException,),
            ).until(lambda _: condition())
        except TimeoutException:
            pytest.fail(
                f"{what() if callable(what) else what} is not shown after {timeout} s on "
                f"{self.driver.current_url}; the page shows:\n{self.text()[:3000]}"
            )

    def expect(self, *texts: str) -> Page:
        """Fail naming the first text that does not appear on the page."""
        for text in texts:
            self._wait(repr(text), lambda text=text: text in self.text())
        return self

    def expect_names(self, what: str, names: list[str]) -> Page:
        """Each name is shown on a line of its own, whole or shortened by the UI ('challe…_comparison')."""

        def missing():
            lines = {line.strip() for line in self.text().splitlines()}
            return [name for name in names if not any(_shows(line, name) for line in lines)]

        self._wait(lambda: f"{what}: {missing()}", lambda: not missing())
        return self

    def click(self, text: str) -> Page:
        """Click the element whose own visible text is exactly ``text``."""
        return self.click_xpath(repr(text), f"//*[normalize-space(text())='{text}']")

    def click_xpath(self, what: str, xpath: str) -> Page:
        """Click the first displayed element matching ``xpath`` (again if the UI re-rendered it meanwhile)."""
        from selenium.webdriver.common.by import By

        def clicked():
            for element in self.driver.find_elements(By.XPATH, xpath):
                if element.is_displayed() and element.is_enabled():
                    element.click()
                    return True
            return False

        self._wait(f"a clickable {what}", clicked)
        return self

    def find(self, what: str, xpath: str):
        from selenium.webdriver.common.by import By

        return self._wait(
            what, lambda: next((e for e in self.driver.find_elements(By.XPATH, xpath) if e.is_displayed()), False)
        )

    def screenshot(self, name: str) -> Path:
        time.sleep(3)  # let spinners, tooltips and the graph's layout settle before the picture
        folder = Path(os.environ.get(SCREENSHOTS_ENV) or self.scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ui-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"screenshot {path} not written"
        return path


def _shows(line: str, name: str) -> bool:
    if line == name:
        return True
    head, sep, tail = line.partition("…")  # the UI shortens long names in the middle
    return bool(sep) and len(head) >= 3 and len(tail) >= 3 and name.startswith(head) and name.endswith(tail)


@pytest.fixture(scope="module")
def ui(browser, webserver, tmp_path_factory) -> Page:
    """The browser on the demo's UI, past the first-visit 'Join the Dagster community' dialog (Skip, once)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = Page(browser, webserver, tmp_path_factory.mktemp("screenshots")).open("/")
    try:
        skip = WebDriverWait(browser, 60, poll_frequency=1).until(
            lambda d: next(
                (e for e in d.find_elements(By.XPATH, "//button[normalize-space(.)='Skip']") if e.is_displayed()), False
            )
        )
        skip.click()
    except TimeoutException:
        pass  # not shown (a later Dagster, or already dismissed): nothing to dismiss
    return page


@pytest.fixture(scope="module")
def model(demo_instance):
    """What the pages must show, taken from the code that defines it (never retyped): the plan, its Dagster
    definitions, the code location, and the broken-pipeline day's failing check (in the demo's environment)."""
    import yaml

    from monitoring_pipelines.definitions import build_definitions
    from monitoring_pipelines.demo import scenario
    from monitoring_pipelines.families.quality.calculator import check_name, check_specs
    from monitoring_pipelines.plan.schema import load_plans

    with pytest.MonkeyPatch.context() as mp:
        for var in _ENV:
            mp.delenv(var, raising=False)
        for var, value in demo_instance.items():
            mp.setenv(var, value)
        (plan,) = [p for p in load_plans() if p.name == MODEL]
        defs = build_definitions([plan])
    (location,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    (event,) = [e for e in scenario.EVENTS if e.kind == "null_column"]
    days = [d.isoformat() for _, d in scenario.scenario_days(plan, DAYS)]
    assert days[event.first_day - 1] == BROKEN_DAY
    return {
        "days": days,
        "location": location["python_module"]["location_name"],
        "assets": sorted(s.key.path[-1] for s in defs.resolve_all_asset_specs() if s.group_name == MODEL),
        "checks": [s.name for s in check_specs(plan)],
        "broken_column": event.params["column"],
        "failed_check": check_name(event.params["column"], "not_null"),
        "schedule": n.scoped(MODEL, n.NIGHTLY_SCHEDULE),
        "sensors": sorted(s.name for s in defs.sensors if s.name.startswith(f"{MODEL}__")),
    }


def test_the_model_group_lineage_shows_every_asset(ui, model):
    assert len(model["assets"]) >= 11
    ui.open(f"/locations/{model['location']}/asset-groups/{MODEL}").expect(MODEL, "Lineage")
    ui.expect_names(f"assets in the lineage graph of asset group {MODEL}", model["assets"])
    ui.screenshot("lineage")


def test_scoring_batch_lists_its_quality_checks(ui, model):
    checks = model["checks"]
    ui.open(f"/assets/{MODEL}/{n.SCORING_BATCH}?view=checks").expect(f"Checks ({len(checks)})")
    ui.expect_names(f"checks in the check list of {n.SCORING_BATCH}", checks)
    ui.screenshot("scoring-batch-checks")


def test_the_blocking_check_failed_on_the_broken_pipeline_day(ui, model):
    check = model["failed_check"]
    ui.open(f"/assets/{MODEL}/{n.SCORING_BATCH}?view=checks&checkDetail={check}")
    ui.expect(check, "This is a blocking asset check.")
    ui.click("Execution history").expect("Failed")
    ui.screenshot(f"{check.replace('_', '-')}-history")
    # the failed execution's metadata names its day: the evaluation itself carries no partition in Dagster 1.13
    ui.click_xpath(
        f"metadata button of the 'Failed' execution of {check}", "//tr[.//*[normalize-space(text())='Failed']]//button"
    )
    ui.expect("Metadata", f"day {BROKEN_DAY}", "unexpected_share 1", f"column {model['broken_column']}")
    ui.screenshot(f"{check.replace('_', '-')}-failed")

    ui.open(f"/assets/{MODEL}/{n.SCORING_BATCH}?view=partitions&partition={BROKEN_DAY}")
    ui.expect("Latest materialization", "blocking_failed_checks", check)
    ui.screenshot(f"scoring-batch-{BROKEN_DAY}")


def test_drift_report_shows_the_latest_metadata_and_the_report_link(ui, model, demo_instance):
    last_day = model["days"][-1]
    report = Path(demo_instance["MONITORING_HOME"]) / "reports" / MODEL / "drift" / f"{last_day}.html"
    assert report.is_file(), f"the demo wrote no drift report {report}"
    ui.open(f"/assets/{MODEL}/{n.DRIFT_REPORT}")
    ui.expect("Latest materialization", last_day, "share_of_drifted_features", "top_features", "report", str(report))
    # a path value (MetadataValue.path) is a link that copies the path to the clipboard: a browser page may
    # not open a file:// URL, so the UI offers no href
    ui.find(
        f"the report path {report} as a copy-to-clipboard link",
        f"//a[@title='Copy to clipboard' and normalize-space(.)='{report}']",
    )
    ui.expect(
        "Upstream assets",
        f"{MODEL} / {n.SCORING_BATCH}",
        f"{MODEL} / {n.REFERENCE_PROFILE}",
        "Downstream assets",
        f"{MODEL} / {n.MODEL_HEALTH}",
    )
    ui.screenshot("drift-report")


def test_automation_lists_the_nightly_schedule_and_the_sensors(ui, model):
    ui.open("/automation").expect("Automation", model["location"])
    ui.expect_names("schedule and sensors on the automation page", [model["schedule"], *model["sensors"]])
    ui.expect("Standard sensor", "Scheduled At")
    ui.screenshot("automation")

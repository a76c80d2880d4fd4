"""End to end: open the report in headless Chromium, as a reader would, and check that it rendered."""

import pytest

from grape.report import write_report

# Flags for a closed network and a root user: no sandbox, no background connections, a fresh profile.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1800"]  # fmt: skip
PLOTS_DRAWN = "return document.querySelectorAll('.js-plotly-plot .main-svg').length"


@pytest.fixture
def browser(chromium, tmp_path):
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium comes with the test extra: pip install -e .[test]"
    )
    path, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = path
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit chromedriver: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_report_renders_in_chromium(browser, verified_scores, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = write_report(verified_scores, None, tmp_path / "report.html")
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(PLOTS_DRAWN) >= 4)

    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # offline

    def count(css: str) -> int:
        return len(browser.find_elements(By.CSS_SELECTOR, css))

    assert count("#figure-chosen_share .bars .point path") == 3  # one bar per source
    assert count("#figure-correct_share .bars .point path") == 3
    assert count("#figure-fit_by_source .boxlayer .trace") == 3
    assert count("#figure-fit_vs_length .scatterlayer .points path") == 11 + 4  # scored + chosen rings
    title = browser.find_element(By.CSS_SELECTOR, "#figure-fit_vs_length .gtitle").text
    assert title.startswith("Fit vs response length: Pearson r = ")

    screenshot = tmp_path / "report.png"  # the page as a reader first sees it
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000

    def visible() -> list[str]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#margins tbody tr")
        return [row.get_attribute("data-id") for row in rows if row.is_displayed()]

    assert visible() == ["q4", "q1", "q2", "q3"]
    browser.find_element(By.ID, "margin-search").send_keys("q2:")
    assert visible() == ["q2"]
    assert browser.find_element(By.ID, "margin-status").text == "1 of 4 instructions match"


def test_run_report_renders_in_chromium(browser, pipeline_runs, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from grape.report.run_report import write_run_report

    page = write_run_report(pipeline_runs, tmp_path / "arms.html")
    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(PLOTS_DRAWN) >= 10)  # 2 + 4 per selection

    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # offline

    def count(css: str) -> int:
        return len(browser.find_elements(By.CSS_SELECTOR, css))

    assert count("#figure-training_loss .scatterlayer .trace .js-line") == 2  # one loss line per arm
    assert count("#figure-training_loss .scatterlayer .points path") == 2 * 3  # three logged steps each
    assert count("#figure-eval_accuracy .scatterlayer .points path") == 2  # one point per arm
    assert count("#figure-eval_accuracy .errorbars .yerror") == 2  # each with its interval
    legend = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#figure-training_loss .legendtext")]
    assert legend == ["grape", "lowest"]
    for prefix in ("s1-", "s2-"):
        assert count(f"#{prefix}figure-chosen_share .bars .point path") >= 1

    def visible(table: str) -> list[str]:
        rows = browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
        return [row.get_attribute("data-id") for row in rows if row.is_displayed()]

    assert len(visible("s1-margins")) == len(visible("s2-margins")) == 4
    browser.find_element(By.ID, "s2-margin-search").send_keys("q2")
    assert visible("s2-margins") == ["q2"] and len(visible("s1-margins")) == 4  # each search filters its own table
    assert browser.find_element(By.ID, "s2-margin-status").text == "1 of 4 instructions match"

    screenshot = tmp_path / "arms.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 20_000

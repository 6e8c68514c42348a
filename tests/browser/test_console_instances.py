"""The console's instances and timing in a real browser (headless Chromium),
against the services as `nameko run` processes, two processors among them:
the page lists every instance with its pid, shows the processed count of the
last 10 minutes that SQL shows, and marks a processor that was stopped as
silent. Screenshots go to test-artifacts/."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.processes import wait_until
from harness.tables import processed_count, unprocessed_order_ids
from order_contract import GATEWAY, GENERATOR, PROCESSOR
from tests.support.browser import chromium, save_screenshot

TIMEOUT = 60


@pytest.fixture
def running(pipeline):
    system = pipeline(
        ORDER_INTERVAL_SECONDS="0.5", HEARTBEAT_INTERVAL_SECONDS="0.5", INSTANCE_SILENT_SECONDS="3"
    ).start()
    system.second_processor = system.start_service("processor_service")
    return system


def wait_for(driver, condition, message):
    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(lambda d: condition())
    except Exception as exc:
        save_screenshot(driver, "console-instances-failure.png")
        raise AssertionError(f"the page did not show {message} within {TIMEOUT} s") from exc


# Read in one script: the page redraws its rows with every snapshot, so an
# element found by one call may be gone by the next.
ROWS = """
return Array.from(document.querySelectorAll('#instance-rows tr[data-instance]'),
                  (tr) => [tr.cells[2].textContent, tr.dataset.service, tr.dataset.state]);
"""
PROCESSED = """
const cell = document.querySelector('#timing-rows tr[data-service="%s"] td.processed');
return cell ? cell.textContent : null;
"""


def rows(driver):
    """{pid: (service, state)} of the instance rows shown."""
    return {int(pid): (service, state) for pid, service, state in driver.execute_script(ROWS)}


def processed_in_timing(driver):
    text = driver.execute_script(PROCESSED % PROCESSOR)
    return None if text is None else int(text.replace(",", ""))


def test_an_operator_sees_every_instance_its_timing_and_the_one_that_stopped(running):
    system = running
    second = system.second_processor
    live = {
        system.generator.process.pid: (GENERATOR, "live"),
        system.processor.process.pid: (PROCESSOR, "live"),
        second.process.pid: (PROCESSOR, "live"),
        system.gateway.process.pid: (GATEWAY, "live"),
    }
    with chromium() as driver:
        driver.get(system.url("/"))
        wait_for(driver, lambda: rows(driver) == live, "four live instances, one per process")
        assert driver.find_element(By.ID, "instances-summary").text == (
            "generator 1 · processor 2 · gateway 1"
        )
        assert not driver.find_element(By.ID, "alarm-instances").is_displayed()
        wait_for(driver, lambda: (processed_in_timing(driver) or 0) >= 10, "orders in the timing")
        save_screenshot(driver, "console-instances.png")

        # The last 10 minutes' processed count reaches what the table holds.
        assert system.post("/stop").status_code == 200
        wait_until(lambda: not unprocessed_order_ids(system.db_uri), TIMEOUT, message="drained")
        in_sql = processed_count(system.db_uri)
        wait_for(
            driver, lambda: processed_in_timing(driver) == in_sql, f"{in_sql} processed in timing"
        )
        assert in_sql >= 10

        second.stop()  # SIGTERM: its heartbeats stop
        gone = {**live, second.process.pid: (PROCESSOR, "silent")}
        wait_for(driver, lambda: rows(driver) == gone, "the stopped processor silent")
        assert "1 silent" in driver.find_element(By.ID, "instances-summary").text
        # One processor still beats: no alarm.
        assert not driver.find_element(By.ID, "alarm-instances").is_displayed()
        save_screenshot(driver, "console-instances-silent.png")

        problems = [
            entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
        ]
        assert problems == []

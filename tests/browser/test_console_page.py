"""The console in a real browser (headless Chromium), against the services
run as `make run` runs them: the page shows the pipeline live, starts and
stops generation with the token typed into it, says so when the token is
wrong, and replays a dead letter. Screenshots go to test-artifacts/."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.broker import publish_order_created
from harness.processes import TEST_TOKEN, wait_until
from harness.tables import (
    parked_dead_letters,
    processed_count,
    scalar,
    sql,
    unprocessed_order_ids,
)
from tests.support.browser import chromium, save_screenshot

PARKED = 10**9  # an order id the generator does not reach in this test
TIMEOUT = 60


@pytest.fixture
def running(pipeline):
    system = pipeline(ORDER_INTERVAL_SECONDS="0.2").start()
    # An event for an order that does not exist (yet): a dead letter.
    publish_order_created(system.amqp_uri, [{"order_id": PARKED}])
    wait_until(lambda: parked_dead_letters(system.db_uri) == 1, 30, message="the dead letter")
    return system


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def number(driver, element_id):
    return int(text(driver, element_id).replace(",", ""))


def wait_for(driver, condition, message):
    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(lambda d: condition())
    except Exception as exc:
        save_screenshot(driver, "console-failure.png")
        raise AssertionError(f"the page did not show {message} within {TIMEOUT} s") from exc


def generation_on(system):
    return bool(scalar(system.db_uri, "SELECT running FROM generator_state"))


def test_an_operator_runs_the_pipeline_from_the_page(running):
    system = running
    with chromium() as driver:
        driver.get(system.url("/"))
        wait_for(driver, lambda: text(driver, "live") == "live", "the live stream")
        wait_for(driver, lambda: text(driver, "generator-state") == "RUNNING", "RUNNING")
        shown_before = number(driver, "processed-total")

        # A wrong token is refused, in words, and changes nothing.
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        driver.find_element(By.ID, "token-save").click()
        driver.find_element(By.ID, "stop").click()
        wait_for(driver, lambda: "401" in text(driver, "generator-message"), "the 401")
        assert "refused the token" in text(driver, "generator-message")
        assert generation_on(system)
        driver.find_element(By.ID, "token-forget").click()
        driver.find_element(By.ID, "token").send_keys(TEST_TOKEN)
        driver.find_element(By.ID, "token-save").click()

        driver.find_element(By.ID, "stop").click()
        wait_for(driver, lambda: text(driver, "generator-state") == "STOPPED", "STOPPED")
        assert not generation_on(system)
        # Waited for, not read at once: a snapshot the stream read before
        # the stop may still arrive after its answer and show RUNNING for a
        # moment; the next one shows the stop.
        wait_for(
            driver,
            lambda: driver.find_element(By.ID, "alarm-stopped").is_displayed(),
            "the generation-stopped alarm",
        )

        # The processed count rises to what the table says once all is done.
        wait_until(lambda: not unprocessed_order_ids(system.db_uri), TIMEOUT, message="drained")
        in_sql = processed_count(system.db_uri)
        wait_for(driver, lambda: number(driver, "processed-total") == in_sql, f"{in_sql} processed")
        assert in_sql > shown_before
        assert number(driver, "in-flight") == 0

        driver.find_element(By.ID, "start").click()
        wait_for(driver, lambda: text(driver, "generator-state") == "RUNNING", "RUNNING again")
        assert generation_on(system)
        # Someone else stops it: the page follows.
        assert system.post("/stop").status_code == 200
        wait_for(driver, lambda: text(driver, "generator-state") == "STOPPED", "STOPPED by another")

        # The dead letter is listed; its order exists now, so a replay processes it.
        row = wait_for(
            driver,
            lambda: driver.find_elements(By.CSS_SELECTOR, "#dead-letter-rows tr[data-id]"),
            "the dead letter",
        )[0]
        assert f"order #{PARKED}" in row.text and "OrderNotFound" in row.text
        assert driver.find_element(By.ID, "alarm-dead").is_displayed()
        save_screenshot(driver, "console-1280x800.png")
        # The cause goes away: the order is there now.
        sql(
            system.db_uri,
            "INSERT INTO orders (id, quantity, created_at) VALUES (:id, 4, UTC_TIMESTAMP(6))",
            id=PARKED,
        )
        row.find_element(By.CSS_SELECTOR, "button.replay").click()
        wait_for(
            driver, lambda: text(driver, "dead-letter-message") == "Replayed 1.", "Replayed 1."
        )
        wait_until(
            lambda: (
                scalar(
                    system.db_uri,
                    "SELECT COUNT(*) FROM order_process WHERE order_id = :id",
                    id=PARKED,
                )
                == 1
            ),
            TIMEOUT,
            message="the replayed order processed",
        )
        wait_for(driver, lambda: text(driver, "dead-letter-count") == "0", "no dead letters")
        assert not driver.find_element(By.ID, "alarm-dead").is_displayed()

        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height)
        save_screenshot(driver, "console-full.png")
        driver.set_window_size(390, 844)
        save_screenshot(driver, "console-phone.png")

        # No script error and no blocked resource; the one refusal was ours.
        problems = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and not entry["message"].endswith("401 (UNAUTHORIZED)")
        ]
        assert problems == []


READ_TOKEN = "Rd4-ReAdOnly_7mKq2Wx9Zp3Lv8Hc5Nt"


def test_with_a_read_token_the_page_shows_nothing_until_given_one_and_cannot_control(pipeline):
    system = pipeline(ORDER_INTERVAL_SECONDS="0.2", GATEWAY_READ_TOKEN=READ_TOKEN).start()
    with chromium() as driver:
        driver.get(system.url("/"))
        wait_for(driver, lambda: "enter the token" in text(driver, "live"), "the token asked for")
        assert text(driver, "processed-total") == "—"

        driver.find_element(By.ID, "token").send_keys(READ_TOKEN)
        driver.find_element(By.ID, "token-save").click()
        wait_for(driver, lambda: text(driver, "live") == "live", "the live stream")
        wait_for(driver, lambda: number(driver, "processed-total") > 0, "orders processed")

        # The read token reads; it does not control.
        driver.find_element(By.ID, "stop").click()
        wait_for(driver, lambda: "403" in text(driver, "generator-message"), "the 403")
        assert generation_on(system)

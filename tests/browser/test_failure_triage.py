"""Failure triage in a real browser (headless Chromium), against the
services run as `make run` runs them.

The story an operator lives: three OrderCreated events arrived for orders
the generator did not have (its database was restored from a backup a few
minutes old), beside one malformed event. The operator finds the group of
poison orders on the page, inspects one of them (its body, trace, attempts
and history), sees that two orders are back now but the third event named a
wrong order id, fixes that one by editing it (a first try with a typo is
refused by the contract, in words), replays the rest of the group, and
reads all of it in the audit trail. Every step is checked against the
tables, not only the page. Screenshots go to test-artifacts/ (the last one
is docs/console.png's source).
"""

import pytest
from kombu import Producer
from nameko.constants import PERSISTENT
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.broker import event_exchange, publish_order_created
from harness.processes import TEST_TOKEN, wait_until
from harness.tables import dead_letter_rows, parked_dead_letters, scalar, sql
from order_contract import ORDER_CREATED
from order_pipeline.broker import connect
from tests.support.browser import chromium, save_screenshot

MISSING = 10**9  # order ids the generator does not reach in this test
# The third event named a wrong order, far from any the generator makes; the
# right one is inserted first, so that the generator's ids go on above it.
WRONG, RIGHT = MISSING + 10**6, MISSING + 30
POISON = [MISSING + 1, MISSING + 2, WRONG]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CAUSE = "order <n> does not exist"
TIMEOUT = 60


def publish_traced(amqp_uri, order_ids):
    """OrderCreated events carrying a trace, as the generator's do."""
    with connect(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=event_exchange())
        for order_id in order_ids:
            producer.publish(
                {"order_id": order_id},
                routing_key=ORDER_CREATED,
                serializer="json",
                delivery_mode=PERSISTENT,
                headers={"nameko.traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
                declare=[event_exchange()],
            )


def add_orders(db_uri, order_ids):
    for order_id in order_ids:
        sql(
            db_uri,
            "INSERT INTO orders (id, quantity, created_at) VALUES (:id, 4, UTC_TIMESTAMP(6))",
            id=order_id,
        )


def times_processed(db_uri, order_id):
    return scalar(db_uri, "SELECT COUNT(*) FROM order_process WHERE order_id = :id", id=order_id)


@pytest.fixture
def poisoned(pipeline):
    system = pipeline(ORDER_INTERVAL_SECONDS="0.5").start()
    publish_traced(system.amqp_uri, POISON)
    publish_order_created(system.amqp_uri, [{"order_id": "x"}])
    wait_until(lambda: parked_dead_letters(system.db_uri) == 4, 30, message="four dead letters")
    # The backup's missing orders are back: two of them; the third event
    # named an order that never was one (the right one is RIGHT).
    add_orders(system.db_uri, [RIGHT, MISSING + 1, MISSING + 2])
    return system


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def wait_for(driver, condition, message):
    try:
        # The page redraws its tables as it learns more: an element read a
        # moment before a redraw is stale, and read again at the next poll.
        return WebDriverWait(
            driver,
            TIMEOUT,
            poll_frequency=0.2,
            ignored_exceptions=[StaleElementReferenceException],
        ).until(lambda d: condition())
    except Exception as exc:
        save_screenshot(driver, "triage-failure.png")
        raise AssertionError(f"the page did not show {message} within {TIMEOUT} s") from exc


def full_page(driver, name):
    """A screenshot of the whole page, from its top, 1280 px wide."""
    driver.set_window_size(1280, 1000)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, height)
    driver.execute_script("window.scrollTo(0, 0)")
    save_screenshot(driver, name)


def group_row(driver):
    """The poison orders' group row, or None."""
    for row in driver.find_elements(By.CSS_SELECTOR, "#group-rows tr[data-group]"):
        if CAUSE in row.find_element(By.CSS_SELECTOR, "td.cause").text:
            return row
    return None


def cells(row):
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


def audit_rows(driver):
    return [
        cells(row) for row in driver.find_elements(By.CSS_SELECTOR, "#audit-rows tr[data-action]")
    ]


def test_an_operator_fixes_a_group_of_poison_orders_and_sees_the_trail(poisoned):
    system = poisoned
    with chromium(height=1000) as driver:
        driver.get(system.url("/"))
        driver.find_element(By.ID, "token").send_keys(TEST_TOKEN)
        driver.find_element(By.ID, "token-save").click()
        wait_for(driver, lambda: text(driver, "live") == "live", "the live stream")

        # The group of poison orders, apart from the malformed event's.
        row = wait_for(driver, lambda: group_row(driver), "the poison orders' group")
        wait_for(driver, lambda: text(driver, "group-count") == "2", "two groups")
        cause, letters, _seen, recent, example, _ = cells(row)
        assert cause.startswith("OrderNotFound: " + CAUSE)
        assert "processor_service/processing.py:process_order_batch" in cause
        assert (letters, recent.split(" (")[0]) == ("3", "3")
        assert recent.endswith("%)")  # the share of the orders created lately
        assert example.startswith("order #")
        assert "orders created" in text(driver, "group-recent")

        # Inspect the one that named the wrong order.
        wrong = wait_for(
            driver,
            lambda: [
                r
                for r in driver.find_elements(By.CSS_SELECTOR, "#dead-letter-rows tr[data-id]")
                if f"order #{WRONG}" in r.text
            ],
            "the letter of the wrong order",
        )[0]
        letter_id = wrong.get_attribute("data-id")
        wrong.find_element(By.CSS_SELECTOR, "button.inspect").click()
        wait_for(driver, lambda: text(driver, "inspect-id") == letter_id, "the inspector")
        facts = text(driver, "inspect-facts")
        assert TRACE_ID in facts and f"{WRONG}" in facts and "Attempts\n1" in facts
        assert text(driver, "inspect-body") == f'{{"order_id": {WRONG}}}'
        (attempt,) = driver.find_elements(By.CSS_SELECTOR, "#inspect-failures tr")
        assert f"OrderNotFound: order {WRONG} does not exist" in attempt.text
        assert text(driver, "inspect-state") == "parked"

        # A typo first: the contract refuses it, in words, and nothing is sent.
        field = driver.find_element(By.ID, "edit-order-id")
        field.clear()
        field.send_keys(str(RIGHT).replace("0", "O", 1))
        driver.find_element(By.ID, "edit-send").click()
        wait_for(driver, lambda: "(400)" in text(driver, "inspect-message"), "the refusal")
        assert "positive integer order_id" in text(driver, "inspect-message")
        assert {r.id: r.state for r in dead_letter_rows(system.db_uri)}[letter_id] == "parked"

        # The fix: the right order, sent in place of the wrong one.
        field.clear()
        field.send_keys(str(RIGHT))
        driver.find_element(By.ID, "edit-send").click()
        wait_for(driver, lambda: "is resolved" in text(driver, "inspect-message"), "the edit sent")
        assert text(driver, "inspect-state") == "edited"
        assert "Sent as message" in text(driver, "inspect-facts")
        wait_until(lambda: times_processed(system.db_uri, RIGHT) == 1, TIMEOUT, message="RIGHT")

        # The whole page at this moment is docs/console.png: a group, one of
        # its letters inspected and edited, the trail.
        wait_for(driver, lambda: len(audit_rows(driver)) == 2, "the edit in the trail")
        wait_for(driver, lambda: text(driver, "dead-letter-count") == "3", "three dead letters")
        full_page(driver, "console-triage.png")
        driver.set_window_size(1280, 1000)

        # The rest of the group: replayed in one action, now that their orders are back.
        row = wait_for(
            driver,
            lambda: (r := group_row(driver)) and cells(r)[1] == "2" and r,
            "the group down to two",
        )
        row.find_element(By.CSS_SELECTOR, "button.replay-group").click()
        # (The row stays put while only its figures move: see triage.js.)
        wait_for(
            driver,
            lambda: "Replayed 2 of OrderNotFound" in text(driver, "group-message"),
            "Replayed 2",
        )
        for order_id in (MISSING + 1, MISSING + 2):
            wait_until(
                lambda order_id=order_id: times_processed(system.db_uri, order_id) == 1,
                TIMEOUT,
                message=f"order {order_id} processed",
            )
        wait_for(driver, lambda: group_row(driver) is None, "the group gone")
        wait_for(driver, lambda: text(driver, "group-count") == "1", "one group left")
        assert times_processed(system.db_uri, WRONG) == 0  # it was never an order

        # The trail, newest first: the group replay, the edit, the refused typo.
        def trail():
            rows = audit_rows(driver)
            return rows if len(rows) == 3 else None

        replayed, edited, refused = wait_for(driver, trail, "three entries in the audit trail")
        who = "control · sha256:"
        assert who in replayed[1] and who in edited[1] and who in refused[1]
        assert replayed[2] == f"replay group OrderNotFound: {CAUSE}"
        assert (replayed[3], replayed[4]) == ("2", "replayed 2")
        assert edited[2] == (f'edit {letter_id}: {{"order_id": {WRONG}}} → {{"order_id": {RIGHT}}}')
        assert edited[3] == "1" and edited[4].startswith(f'edited: sent {{"order_id": {RIGHT}}}')
        assert refused[4].startswith("refused (InvalidPayload): OrderCreated needs")
        assert TEST_TOKEN not in text(driver, "audit-panel")

        full_page(driver, "triage-full.png")
        driver.set_window_size(390, 844)
        save_screenshot(driver, "triage-phone.png")

        # No script error and no blocked resource; the one 400 was the typo's.
        problems = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "400 (BAD REQUEST)" not in entry["message"]
        ]
        assert problems == []

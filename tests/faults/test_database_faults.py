"""The database goes away while orders are being processed."""

import signal
import time

import eventlet
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from harness.processes import wait_until
from order_pipeline.database import ENGINE_OPTIONS, for_services
from tests.faults.ledger import audit
from tests.faults.retry_log import attempts_histogram, attempts_within, expected_delay, retries
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import create_orders

ORDERS = 40
OUTAGE_SECONDS = 4
FIRST_DELAY, MAX_DELAY = 0.25, 2.0


def test_database_outage_is_retried_with_back_off_and_then_processed(
    private_mariadb, make_vhost, make_pipeline, make_ledger
):
    db_uri, amqp_uri = private_mariadb.create_database(), make_vhost()
    system = make_pipeline(
        db_uri,
        amqp_uri,
        GENERATE_ON_FIRST_START="false",
        RETRY_FIRST_DELAY_SECONDS=FIRST_DELAY,
        RETRY_MAX_DELAY_SECONDS=MAX_DELAY,
    ).start()
    ledger = make_ledger(db_uri)
    # Queue up orders for a paused processor, take the database away, and
    # let the processor loose on them.
    system.processor.signal(signal.SIGSTOP)
    create_orders(amqp_uri, ORDERS)
    # Their events go out in the background, just after each commit.
    wait_until(lambda: ledger.outbox_size() == 0, 30, message="every OrderCreated published")
    outage_start = time.monotonic()
    private_mariadb.stop()
    system.processor.signal(signal.SIGCONT)
    eventlet.sleep(OUTAGE_SECONDS)
    private_mariadb.start()
    outage = time.monotonic() - outage_start
    fault_end = ledger.fault_ended()

    recovery = ledger.wait_recovered(fault_end)
    ledger.wait_drained(amqp_uri)
    figures = audit(
        f"MariaDB stopped for {OUTAGE_SECONDS} s",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )
    assert figures.committed == ORDERS

    found = retries(processor_outputs(system))
    assert found, "the failed orders should have been retried"
    # Growing delays, as configured, for each attempt...
    for attempt, delay in found:
        assert delay == expected_delay(attempt, FIRST_DELAY, MAX_DELAY)
    # ...not a hot loop: each event was retried only as often as back-off
    # allows in the time it was failing, and no event joined late.
    most_attempts = attempts_within(outage + recovery, FIRST_DELAY, MAX_DELAY)
    histogram = attempts_histogram(found)
    assert max(histogram) <= most_attempts
    assert histogram[1] <= ORDERS
    assert all(histogram[n + 1] <= histogram[n] for n in range(1, max(histogram)))
    assert len(found) <= ORDERS * most_attempts


def test_a_database_that_stops_answering_fails_the_query_and_a_new_connection_serves_the_next(
    private_mariadb,
):
    """DB_IO_TIMEOUT_SECONDS: a query on a connection that answers nothing
    fails (as after a lost connection, which the services retry) instead of
    waiting on it, and once the server answers again the pool serves the
    next query on a new connection. Without it, a connection whose packets
    a network dropped comes back only at TCP's next retransmission."""
    options = for_services(ENGINE_OPTIONS, {"DB_IO_TIMEOUT_SECONDS": 1})
    engine = create_engine(private_mariadb.create_database(), **options)
    try:
        with engine.connect() as connection:
            before = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
        private_mariadb.freeze()
        try:
            # The guard only stops a hang from stalling the suite; the
            # query's own error is what is asserted.
            with eventlet.Timeout(120), pytest.raises(OperationalError) as raised:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
        finally:
            private_mariadb.thaw()
        assert "timed out" in str(raised.value)
        with engine.connect() as connection:
            after = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
        assert after != before
    finally:
        engine.dispose()

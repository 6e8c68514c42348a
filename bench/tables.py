"""What the benchmark reads from the tables (and nothing else of the
processor): how many orders are processed, when, and how long after their
creation."""

import time
from datetime import UTC

from sqlalchemy import text

from harness.processes import wait_until
from harness.sandbox import check_running


def processed_count(engine):
    with engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*) FROM order_process")).scalar_one()


def processed_times(engine):
    """Every processed_at, as epoch seconds, in order."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT processed_at FROM order_process ORDER BY processed_at")
        ).scalars()
        return [epoch(moment) for moment in rows]


def creation_and_processing(engine):
    """[(order id, created_at, processed_at)] in epoch seconds, for every
    processed order."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT o.id, o.created_at, p.processed_at "
                "FROM orders o JOIN order_process p ON p.order_id = o.id ORDER BY o.id"
            )
        )
        return [
            (order_id, epoch(created), epoch(processed)) for order_id, created, processed in rows
        ]


def epoch(naive_utc):
    """A naive UTC DATETIME (as the services store them) as epoch seconds."""
    return naive_utc.replace(tzinfo=UTC).timestamp()


def wait_processed(engine, expected, processes, on_poll=None, stall_seconds=60, poll_seconds=0.25):
    """Poll until `expected` orders are processed, calling `on_poll(count)`
    after each count. Fails if a process exits or no order is processed for
    `stall_seconds`. Returns the time.time() at which the count was first
    seen complete."""
    progress = {"count": -1, "at": time.monotonic()}

    def done():
        check_running(processes)
        count = processed_count(engine)
        if on_poll is not None:
            on_poll(count)
        if count != progress["count"]:
            progress.update(count=count, at=time.monotonic())
        elif time.monotonic() - progress["at"] > stall_seconds:
            raise RuntimeError(
                f"stalled at {count} of {expected} orders processed for {stall_seconds} s"
            )
        return count >= expected

    wait_until(
        done, timeout=float("inf"), interval=poll_seconds, message=f"{expected} orders processed"
    )
    return time.time()

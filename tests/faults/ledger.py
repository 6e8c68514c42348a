"""What the fault scenarios promise, as checks on the real tables, queues
and logs: every committed order has exactly one order_process row, nothing
else does, and /metrics agrees with SQL over the tables."""

import re
import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from harness.broker import HANDLER_QUEUE, queue_depth
from harness.processes import wait_until
from harness.tables import sql_metrics
from tests.faults.figures import Figures, record

# What the processor prints once per order it stores: a line of the text log
# format (order_pipeline.logs.TEXT_FORMAT) from the "orders" logger.
EXECUTION_LINE = re.compile(r"^\S+ \S+ INFO orders: Order (\d+) OrderExecutionPrice ", re.MULTILINE)


@dataclass(frozen=True)
class FaultEnd:
    """When a fault was lifted, and the newest order committed by then."""

    at: float
    last_order_id: int


class Ledger:
    """Read-only questions about one scenario's database."""

    def __init__(self, db_uri):
        self.db_uri = db_uri
        self.engine = create_engine(db_uri, pool_pre_ping=True)

    def close(self):
        self.engine.dispose()

    def scalar(self, statement, **params):
        with self.engine.connect() as connection:
            return connection.execute(text(statement), params).scalar()

    def committed(self):
        return self.scalar("SELECT COUNT(*) FROM orders")

    def processed(self):
        return self.scalar("SELECT COUNT(*) FROM order_process")

    def last_order_id(self):
        return self.scalar("SELECT COALESCE(MAX(id), 0) FROM orders")

    def unprocessed(self, through_id=None):
        return self.scalar(
            "SELECT COUNT(*) FROM orders o LEFT JOIN order_process p ON p.order_id = o.id "
            "WHERE p.order_id IS NULL AND o.id <= :last",
            last=through_id if through_id is not None else 2**62,
        )

    def orphan_rows(self):
        """order_process rows without an order (the processor confirms
        every order with the generator before storing its result)."""
        return self.scalar(
            "SELECT COUNT(*) FROM order_process p LEFT JOIN orders o ON o.id = p.order_id "
            "WHERE o.id IS NULL"
        )

    def totals_count(self):
        """Orders counted in the running totals behind /metrics."""
        return int(self.scalar("SELECT COALESCE(SUM(orders_processed), 0) FROM processing_totals"))

    def latency_histogram_count(self):
        """Orders counted in the end-to-end latency histogram (Prometheus)."""
        return int(self.scalar("SELECT COALESCE(SUM(orders), 0) FROM latency_histogram"))

    def timed_rows(self):
        """order_process rows whose latency is known (the histogram's share)."""
        return self.scalar("SELECT COUNT(*) FROM order_process WHERE order_created_at IS NOT NULL")

    def outbox_size(self):
        return self.scalar("SELECT COUNT(*) FROM order_outbox")

    def creation_times(self, since, until):
        """created_at of the orders created between two naive UTC moments,
        in order."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT created_at FROM orders WHERE created_at BETWEEN :since AND :until "
                        "ORDER BY created_at"
                    ),
                    {"since": since, "until": until},
                ).scalars()
            )

    def fault_ended(self):
        return FaultEnd(time.monotonic(), self.last_order_id())

    def wait_recovered(self, fault_end, timeout=30):
        """Seconds from the fault's end until every order committed by then
        has been processed."""
        wait_until(
            lambda: self.unprocessed(fault_end.last_order_id) == 0,
            timeout,
            message=f"orders up to {fault_end.last_order_id} processed after the fault",
        )
        return time.monotonic() - fault_end.at

    def wait_drained(self, amqp_uri, timeout=60):
        """Every order processed, no event left in the outbox or the queue."""

        def drained():
            return (
                self.unprocessed() == 0
                and self.outbox_size() == 0
                and queue_depth(amqp_uri, HANDLER_QUEUE) == 0
            )

        wait_until(drained, timeout, interval=0.2, message="pipeline drained")


def execution_lines(outputs):
    """How many times each order id was printed as executed."""
    return Counter(
        int(order_id) for output in outputs for order_id in EXECUTION_LINE.findall(output)
    )


def audit(scenario, ledger, metrics, processor_outputs, recovery_seconds, recorded=None):
    """Record the scenario's figures (in `recorded`, a list; the fault
    suite's table by default), then assert nothing was lost or doubled and
    that /metrics (`metrics`) equals SQL over the tables."""
    committed, processed = ledger.committed(), ledger.processed()
    printed = execution_lines(processor_outputs)
    doubled_prints = sum(count - 1 for count in printed.values() if count > 1)
    doubled_totals = max(0, ledger.totals_count() - processed)
    figures = Figures(
        scenario=scenario,
        committed=committed,
        processed=processed,
        lost=ledger.unprocessed(),
        duplicated=doubled_prints + doubled_totals,
        recovery_seconds=recovery_seconds,
    )
    record(figures, recorded)

    assert committed > 0
    assert figures.lost == 0, "committed orders without an order_process row"
    assert ledger.orphan_rows() == 0, "order_process rows without an order"
    assert doubled_prints == 0, (
        f"orders executed more than once: { ({order_id: count for order_id, count in printed.items() if count > 1}) }"
    )
    assert ledger.totals_count() == processed, "processing_totals out of step with rows"
    assert ledger.latency_histogram_count() == ledger.timed_rows() == processed, (
        "latency_histogram out of step with rows"
    )
    assert metrics == sql_metrics(ledger.db_uri)
    return figures

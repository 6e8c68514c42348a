"""Processing one OrderCreated event, as plain functions (no nameko, no
broker): parse the payload, confirm the order, price it, store it once."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.exc import IntegrityError

from order_contract import DEAD_LETTERED, RETRIED, InvalidPayload, OrderCreated, ProcessorTelemetry
from order_pipeline.failures import located
from order_pipeline.times import iso_z, parse_iso_z, utc_now
from order_pipeline.trace_context import tracer
from order_pipeline.transactions import is_duplicate_key, run_transaction
from processor_service import store
from processor_service.exceptions import InvalidEvent, OrderNotFound
from processor_service.latency import as_histogram
from processor_service.monitoring import Handling, handling_figures
from processor_service.pricing import CENT, execution_price


@dataclass(frozen=True)
class ProcessingResult:
    order_id: int
    unit_price: Decimal
    execution_price: Decimal
    processed_at: datetime
    order_created_at: datetime | None = None  # as the generator reported it


def parse_order_created(payload):
    """The order id of an OrderCreated payload, or InvalidEvent (which the
    handler dead-letters: retrying cannot fix a payload)."""
    try:
        return OrderCreated.from_payload(payload).order_id
    except InvalidPayload as exc:
        raise InvalidEvent(str(exc)) from None


def price_order(order, unit_price, processed_at):
    return ProcessingResult(
        order_id=order["id"],
        unit_price=unit_price,
        execution_price=execution_price(order["quantity"], unit_price),
        processed_at=processed_at,
        order_created_at=parse_utc(order.get("created_at")),
    )


def parse_utc(text):
    """An ISO 8601 UTC time ("2026-11-29T10:00:00.000001Z") as the naive UTC
    datetime the tables store; None for None or anything unreadable (the
    latency of that order is then unknown, not wrong)."""
    return parse_iso_z(text)


@dataclass
class BatchOutcome:
    stored: list  # ProcessingResults newly stored, in order
    failures: list  # per payload: None (done) or the exception that failed it
    duplicates: int = 0  # orders that were already processed (redeliveries)


def process_order_batch(payloads, get_orders, price_source, db, instance_id=None):
    """Handle a batch of OrderCreated payloads.

    Every order is confirmed with the generator (one `get_orders` call for
    the batch), priced, and stored in one transaction. A payload without a
    usable order id, or for an order the generator does not have, fails
    alone (InvalidEvent, OrderNotFound); an error from the generator, the
    price source or the database fails the whole batch (it is retried).
    Orders already processed (a redelivered event) are skipped. With the
    handling `instance_id`, the batch's timing is added to handling_seconds
    in the same transaction (monitoring.handling_figures).
    """
    handling = Handling.starting_now(instance_id) if instance_id is not None else None
    failures = [None] * len(payloads)
    order_ids = {}
    for index, payload in enumerate(payloads):
        try:
            order_ids[index] = parse_order_created(payload)
        except InvalidEvent as exc:
            failures[index] = exc
    orders = {}
    if order_ids:
        orders = {order["id"]: order for order in get_orders(sorted(set(order_ids.values())))}
    processed_at = utc_now()
    results = {}
    for index, order_id in order_ids.items():
        order = orders.get(order_id)
        if order is None:
            # Located here (it is returned, not raised): a dead letter records
            # where it failed.
            failures[index] = located(OrderNotFound(f"order {order_id} does not exist"))
        elif order_id not in results:
            results[order_id] = price_order(order, price_source.unit_price(), processed_at)
    stored = store_results(db, list(results.values()), handling) if results else []
    return BatchOutcome(stored=stored, failures=failures, duplicates=len(results) - len(stored))


def store_results(db, results, handling=None):
    """Store in one transaction; once more if another processor stored one
    of these orders between our check and our insert (a concurrent
    redelivery), which the second check then sees.

    The transaction runs again whole on a deadlock, certification conflict
    or lost connection. Storing skips the orders already stored, so even
    after a connection lost during COMMIT nothing is stored or counted
    twice; the batch's processed_at (to the microsecond) then tells which
    rows that commit stored, so that each order's line is printed once."""

    def work(session):
        stored = store.add_results(session, results)
        if stored and handling is not None:
            figures = handling_figures(stored, handling.elapsed_us())
            store.add_handling(session, handling.shard, figures)
        return stored

    def recover(session):
        stored = store.stored_at(session, [result.order_id for result in results], processed_at)
        return [result for result in results if result.order_id in stored] or None

    processed_at = results[0].processed_at
    try:
        with tracer().start_as_current_span("insert order_process"):
            return run_transaction(db, work, name="storing results", recover=recover)
    except IntegrityError as exc:
        if not is_duplicate_key(exc):
            raise
    return run_transaction(db, work, name="storing results", recover=recover)


def execution_line(result):
    """The line printed for each processed order."""
    return f"Order {result.order_id} OrderExecutionPrice {result.execution_price}"


def result_as_dict(row):
    return {
        "order_id": row.order_id,
        "unit_price": str(row.unit_price),
        "execution_price": str(row.execution_price),
        "processed_at": iso_z(row.processed_at),
    }


def metrics_as_dict(orders_processed, execution_price_sum):
    average = None
    if orders_processed:
        average = str(
            (Decimal(execution_price_sum) / orders_processed).quantize(CENT, rounding=ROUND_HALF_UP)
        )
    return {"total_orders_processed": int(orders_processed), "average_execution_price": average}


def telemetry_as_dict(totals, set_asides, latency_rows) -> ProcessorTelemetry:
    """The contract's ProcessorTelemetry from store.totals,
    store.set_aside_counts and store.latency_histogram."""
    metrics = metrics_as_dict(*totals)
    return {
        "orders_processed": metrics["total_orders_processed"],
        "average_execution_price": metrics["average_execution_price"],
        "orders_retried": set_asides.get(RETRIED, 0),
        "orders_dead_lettered": set_asides.get(DEAD_LETTERED, 0),
        "latency": as_histogram(latency_rows),
    }


def processed_seconds_as_dicts(per_second):
    """store.processed_per_second's figures as the contract's ProcessedSecond
    dicts, oldest second first."""
    return [
        {
            "second": second,
            "processed": count,
            "average_execution_price": str(
                (Decimal(price_sum) / count).quantize(CENT, rounding=ROUND_HALF_UP)
            ),
            "latency_p50_ms": microseconds_as_ms(p50),
            "latency_p95_ms": microseconds_as_ms(p95),
        }
        for second, (count, price_sum, p50, p95) in sorted(per_second.items())
    ]


def microseconds_as_ms(microseconds):
    return None if microseconds is None else round(int(microseconds) / 1000, 1)


def epoch_second_as_utc(second):
    """The naive UTC datetime at an epoch second."""
    return datetime.fromtimestamp(second, UTC).replace(tzinfo=None)

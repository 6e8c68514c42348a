"""The console's event stream over real HTTP, with the real services behind it:
several pages at once, a page that goes away, no worker held by a stream,
and a snapshot whose every figure equals what the tables say."""

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from gateway.event_streams import EventStreams
from gateway.openapi import openapi_document
from harness.broker import publish_order_created
from harness.processes import wait_until
from harness.tables import parked_dead_letters, sql, sql_metrics
from tests.support.event_stream import EventReader
from tests.support.openapi import schema_violations
from tests.support.services import wait_processed

EPOCH = datetime(1970, 1, 1)


def open_streams(services):
    container = services.containers["gateway"]
    (provider,) = [d for d in container.dependencies if isinstance(d, EventStreams)]
    return provider.registry.open_count


@pytest.fixture
def services(services):
    """All three services, started (the fixture is tests/integration/conftest.py's)."""
    return services.start("generator", "processor", "gateway")


def test_several_pages_share_each_snapshot_and_a_closed_page_frees_its_stream(services):
    readers = [EventReader(services.base_url) for _ in range(4)]
    try:
        # On a loaded machine the first snapshots may find a service slow to
        # answer (RPC_TIMEOUT_SECONDS): wait for one that saw it up.
        firsts = [
            reader.snapshot_where(lambda s: s["services"]["generator"] == "up")
            for reader in readers
        ]
        assert open_streams(services) == 4
        # Each snapshot was read once and sent to every page: the pages see
        # the same snapshots (the same "at"), whenever each one opened.
        latest = max(first["at"] for first in firsts)
        seen = [reader.snapshot_where(lambda s, t=latest: s["at"] > t)["at"] for reader in readers]
        assert len(set(seen)) == 1, seen
        readers[0].close()
        wait_until(
            lambda: open_streams(services) == 3, 30, message="the closed page's stream freed"
        )
        # The others go on.
        later = [reader.snapshot_where(lambda s, t=seen[0]: s["at"] > t) for reader in readers[1:]]
        assert len({snapshot["at"] for snapshot in later}) == 1
    finally:
        for reader in readers:
            reader.close()
    wait_until(lambda: open_streams(services) == 0, 30, message="every stream freed")


def test_open_streams_hold_no_worker(services):
    max_workers = services.containers["gateway"].max_workers
    readers = [EventReader(services.base_url) for _ in range(max_workers + 2)]
    try:
        for reader in readers:
            reader.next_snapshot()
        # Were each stream a worker, none would be left for this request.
        response, body = services.get("/status")
        assert response.status_code == 200, body
        start_response, _ = services.post("/start")
        assert start_response.status_code == 200
        for reader in readers:
            reader.snapshot_where(lambda s: s["generator"]["running"] is True)
    finally:
        for reader in readers:
            reader.close()


def test_a_stopped_service_is_shown_down_with_its_figures_null(services):
    reader = EventReader(services.base_url)
    try:
        reader.snapshot_where(lambda s: s["services"]["processor"] == "up")
        services.stop("processor")
        # On a loaded machine a round of calls may miss the generator, or
        # find the processor slow (down) before the broker has dropped its
        # consumer (RPC_TIMEOUT_SECONDS is 1 s here): wait for a snapshot of
        # the processor gone, consumer and all, and the generator answering.
        down = reader.snapshot_where(
            lambda s: (
                s["services"]["processor"] == "down"
                and s["services"]["consumers"] == 0
                and s["services"]["generator"] == "up"
            )
        )
        assert down["figures"]["total_orders_processed"] is None
        assert down["figures"]["in_flight"] is None
        assert down["dead_letters"]["state"] == "down"
        assert down["generator"]["running"] is False  # the generator still answers
    finally:
        reader.close()


# --- the snapshot equals SQL --------------------------------------------------------------


def epoch_second(moment):
    return math.floor((moment - EPOCH).total_seconds())


def nearest_rank(values, percentile):
    ordered = sorted(values)
    return ordered[math.ceil(percentile / 100 * len(ordered)) - 1]


def cents(value):
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def per_second(charts, name):
    """{second: value} for the seconds of a chart that have something."""
    first = charts["end"] - charts["seconds"] + 1
    return {
        first + index: value for index, value in enumerate(charts[name]) if value not in (0, None)
    }


def test_the_snapshot_equals_what_the_tables_say_also_after_a_gateway_restart(services):
    db = services.db_uri
    publish_order_created(services.amqp_uri, [{"order_id": 10**9}])  # one dead letter
    services.post("/start")
    wait_until(lambda: sql(db, "SELECT COUNT(*) FROM orders")[0][0] >= 15, 60, message="orders")
    services.post("/stop")
    wait_processed(services, timeout=60)
    wait_until(lambda: parked_dead_letters(db) == 1, 20, message="the dead letter")
    # A gateway started now shows the minutes before it: they come from the tables.
    services.stop("gateway")
    services.start("gateway")
    reader = EventReader(services.base_url)
    try:
        snapshot = reader.snapshot_where(
            lambda s: s["services"]["processor"] == "up" and s["generator"]["running"] is False
        )
    finally:
        reader.close()
    document = openapi_document()
    assert schema_violations(document, {"$ref": "#/components/schemas/Snapshot"}, snapshot) == []

    orders = sql(db, "SELECT id, quantity, created_at FROM orders ORDER BY id")
    processed = sql(
        db,
        "SELECT order_id, unit_price, execution_price, processed_at, order_created_at "
        "FROM order_process ORDER BY order_id",
    )
    created_at = {row.id: row.created_at for row in orders}
    # The processor kept each order's created_at as the generator has it.
    assert all(row.order_created_at == created_at[row.order_id] for row in processed)

    metrics = sql_metrics(db)
    assert snapshot["figures"] == {
        "total_orders_processed": metrics["total_orders_processed"],
        "average_execution_price": metrics["average_execution_price"],
        "orders_created": len(orders),
        "in_flight": 0,
        "dead_lettered": 1,
    }
    assert snapshot["generator"]["orders_created"] == len(orders)
    assert snapshot["services"] == {
        "generator": "up",
        "processor": "up",
        "broker": "up",
        "consumers": 1,
        "queue_depth": 0,
        "outbox_backlog": 0,
    }
    assert snapshot["dead_letters"]["count"] == 1
    assert [item["order_id"] for item in snapshot["dead_letters"]["items"]] == [10**9]

    charts = snapshot["charts"]
    created = {}
    for row in orders:
        created[epoch_second(row.created_at)] = created.get(epoch_second(row.created_at), 0) + 1
    assert per_second(charts, "created") == created
    seconds = {}
    for row in processed:
        seconds.setdefault(epoch_second(row.processed_at), []).append(row)
    assert per_second(charts, "processed") == {s: len(rows) for s, rows in seconds.items()}
    assert per_second(charts, "average_execution_price") == {
        s: cents(sum(r.execution_price for r in rows) / len(rows)) for s, rows in seconds.items()
    }
    for percentile in (50, 95):
        expected = {}
        for second, rows in seconds.items():
            latencies = [(r.processed_at - r.order_created_at) // EPOCH.resolution for r in rows]
            expected[second] = round(nearest_rank(latencies, percentile) / 1000, 1)
        assert per_second(charts, f"latency_p{percentile}_ms") == expected, percentile
    now_second = math.floor(datetime.now(UTC).timestamp())
    assert now_second - 5 <= charts["end"] + 1 <= now_second + 1

    results = {row.order_id: row for row in processed}
    expected_recent = []
    for row in sorted(orders, key=lambda o: o.id, reverse=True)[:20]:
        result = results[row.id]
        expected_recent.append(
            {
                "id": row.id,
                "quantity": row.quantity,
                "unit_price": str(result.unit_price),
                "execution_price": str(result.execution_price),
                "latency_ms": round(
                    (result.processed_at - row.created_at).total_seconds() * 1000, 1
                ),
            }
        )
    shown = [
        {
            key: order[key]
            for key in ("id", "quantity", "unit_price", "execution_price", "latency_ms")
        }
        for order in snapshot["recent_orders"]
    ]
    assert shown == expected_recent

"""Service instances and timing without anything running: the heartbeat's
contract, the rule that makes an instance silent or stalled, each service's
counts, and the timing figures summed from what each batch adds.
tests/integration/test_instances.py and test_timing.py have them with the
real services."""

from datetime import datetime
from decimal import Decimal

import pytest

from gateway.monitoring import LIVE, SILENT, STALLED, instance_state, instances_view
from gateway.settings import InstanceRules
from order_contract import (
    GATEWAY,
    GENERATOR,
    PROCESSOR,
    InvalidPayload,
    validate_heartbeat,
)
from processor_service.monitoring import handling_figures, heartbeat_row, timing_figures
from processor_service.processing import ProcessingResult

RULES = InstanceRules(silent_seconds=15, stall_seconds=30)

HEARTBEAT = {
    "instance_id": "0123456789abcdef",
    "service": PROCESSOR,
    "host": "worker-7",
    "pid": 4242,
    "version": "0.1.0",
    "commit": "ed8a25506fd2",
    "started_at": "2026-12-01T10:00:00.000001Z",
    "workers_active": 2,
    "workers_max": 10,
    "seconds_since_event": 0.25,
    "events_waiting": 0,
    "queue_ready": 0,
}


# --- the heartbeat --------------------------------------------------------------------


def test_a_heartbeat_is_taken_as_sent_and_stored_as_columns():
    assert validate_heartbeat(dict(HEARTBEAT)) == HEARTBEAT
    generator = {
        **HEARTBEAT,
        "service": GENERATOR,
        "commit": None,
        "seconds_since_event": None,
        "events_waiting": None,
        "queue_ready": None,
    }
    assert validate_heartbeat(generator) == generator
    row = heartbeat_row(validate_heartbeat(HEARTBEAT))
    assert row["started_at"] == datetime(2026, 12, 1, 10, 0, 0, 1)
    assert (row["git_commit"], row["ms_since_event"]) == ("ed8a25506fd2", 250)


@pytest.mark.parametrize(
    "field, value",
    [
        ("instance_id", "not-hex"),
        ("service", "someone_else"),  # only the three services beat
        ("service", None),
        ("host", ""),
        ("host", "h" * 256),
        ("pid", 0),
        ("pid", True),
        ("commit", "not a commit"),
        ("started_at", "yesterday"),
        ("workers_active", -1),
        ("workers_max", 0),
        ("seconds_since_event", -1),
        ("seconds_since_event", True),
        ("events_waiting", 1.5),
        ("queue_ready", "3"),
    ],
)
def test_a_heartbeat_that_breaks_the_contract_is_refused_naming_the_field(field, value):
    with pytest.raises(InvalidPayload, match=f"^heartbeat with {field}="):
        validate_heartbeat({**HEARTBEAT, field: value})


def test_anything_but_an_object_is_no_heartbeat():
    for payload in (None, [], "beat", 7):
        with pytest.raises(InvalidPayload, match="a heartbeat is an object"):
            validate_heartbeat(payload)


# --- silent, stalled, live ------------------------------------------------------------


def seen(seconds_since_seen=1.0, **facts):
    return {
        **validate_heartbeat(HEARTBEAT),
        "last_seen_at": "2026-12-01T10:05:00.000000Z",
        "seconds_since_seen": seconds_since_seen,
        **facts,
    }


@pytest.mark.parametrize(
    "facts, state",
    [
        ({}, LIVE),
        ({"seconds_since_seen": 15}, LIVE),  # silent only past the limit
        ({"seconds_since_seen": 15.001}, SILENT),
        # Took nothing for long, with nothing to take: an idle processor.
        ({"seconds_since_event": 300, "events_waiting": 0, "queue_ready": 0}, LIVE),
        # Events wait, but it took one lately: a busy processor.
        ({"seconds_since_event": 29.9, "events_waiting": 200, "queue_ready": 5000}, LIVE),
        # Events wait for it, delivered or on its queue, and it takes none.
        ({"seconds_since_event": 30, "events_waiting": 1, "queue_ready": 0}, STALLED),
        ({"seconds_since_event": 90, "events_waiting": 0, "queue_ready": 7}, STALLED),
        # The broker did not say what its queue holds: its own count decides.
        ({"seconds_since_event": 90, "events_waiting": 0, "queue_ready": None}, LIVE),
        # Silence first: a silent processor's last word is old news.
        ({"seconds_since_seen": 60, "seconds_since_event": 90, "events_waiting": 4}, SILENT),
        # A service that consumes no events is never stalled.
        (
            {
                "service": GATEWAY,
                "seconds_since_event": None,
                "events_waiting": None,
                "queue_ready": None,
            },
            LIVE,
        ),
    ],
)
def test_an_instance_is_silent_stalled_or_live(facts, state):
    assert instance_state(seen(**facts), RULES) == state


def test_every_service_is_counted_in_every_state_zeros_included():
    view = instances_view(
        [
            seen(),
            seen(seconds_since_seen=20),
            seen(seconds_since_event=40, events_waiting=2),
            seen(service=GENERATOR, seconds_since_event=None, events_waiting=None),
        ],
        RULES,
    )
    assert view["services"] == {
        GENERATOR: {"live": 1, "silent": 0, "stalled": 0},
        PROCESSOR: {"live": 1, "silent": 1, "stalled": 1},
        GATEWAY: {"live": 0, "silent": 0, "stalled": 0},
    }
    # The generator first, then the processors as listed.
    assert [(item["service"], item["state"]) for item in view["instances"]] == [
        (GENERATOR, LIVE),
        (PROCESSOR, LIVE),
        (PROCESSOR, SILENT),
        (PROCESSOR, STALLED),
    ]
    assert (view["silent_after_seconds"], view["stall_after_seconds"]) == (15, 30)


# --- timing ------------------------------------------------------------------------------


def result(order_id, processed_at, created_at):
    return ProcessingResult(
        order_id=order_id,
        unit_price=Decimal("100.0000"),
        execution_price=Decimal("100.00"),
        processed_at=processed_at,
        order_created_at=created_at,
    )


def test_each_order_of_a_batch_counts_its_batch_s_processing_time_and_its_own_critical_time():
    stored = datetime(2026, 12, 1, 10, 0, 5, 500_000)  # epoch second 1796119205
    figures = handling_figures(
        [
            result(1, stored, datetime(2026, 12, 1, 10, 0, 5, 400_000)),  # 100 ms
            result(2, stored, datetime(2026, 12, 1, 10, 0, 5, 200_000)),  # 300 ms
            result(3, stored, None),  # created_at unknown: no critical time
        ],
        processing_us=20_000,
    )
    assert figures == {
        1796119205: {
            "processed": 3,
            "processing_us_sum": 60_000,
            "critical_orders": 2,
            "critical_us_sum": 400_000,
        }
    }


def test_the_timing_is_averaged_per_order_and_spread_over_the_window():
    sums = {
        "processed": 1200,
        "processing_us_sum": 36_000_000,
        "critical_orders": 1000,
        "critical_us_sum": 450_000_000,
        "retries": 60,
    }
    assert timing_figures(sums, 600) == {
        "processed": 1200,
        "throughput_per_second": 2.0,
        "processing_time_ms": 30.0,
        "critical_time_ms": 450.0,
        "retries": 60,
        "retries_per_second": 0.1,
    }
    quiet = timing_figures({name: 0 for name in sums}, 600)
    assert (quiet["processing_time_ms"], quiet["critical_time_ms"]) == (None, None)
    assert quiet["throughput_per_second"] == 0


def test_a_heartbeat_acked_on_a_connection_the_broker_reset_does_not_stop_the_service():
    """nameko kills the container when a worker's ack raises; a broker
    restart made it raise ConnectionResetError (seen in the fault suite)."""
    from order_pipeline.extensions.heartbeats import HeartbeatConsumer

    class ResetConnection:
        def ack_message(self, message):
            raise ConnectionResetError(104, "Connection reset by peer")

    consumer = HeartbeatConsumer()
    consumer.queue_consumer = ResetConnection()
    assert consumer.handle_result(object(), None, "stored", None) == ("stored", None)

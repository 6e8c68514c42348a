"""The console's parts that need nothing running: the event-stream registry,
the chart window, assembling a snapshot, the request body of the dead-letter
actions, the console's files, and the contract they share."""

import json
from datetime import datetime
from decimal import Decimal

import eventlet
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import console_files
from gateway.charts import SETTLE_SECONDS, ChartWindow
from gateway.errors import BadRequest, NotFound
from gateway.event_streams import (
    HEARTBEAT,
    EventStreamRegistry,
    StreamBody,
    sse_event,
)
from gateway.request_body import read_ids
from gateway.snapshot import DOWN, ERROR, UP, Answer, assemble, latency_ms
from order_contract import (
    CHART_SECONDS,
    DEAD_LETTER_QUEUE,
    GENERATOR,
    MAX_DEAD_LETTERS_PER_CALL,
    ORDER_CREATED,
    ORDER_CREATED_QUEUE,
    InvalidArgument,
    validate_dead_letter_ids,
    validate_limit,
    validate_since,
)
from order_pipeline.extensions.reliable_events import new_dead_letter_id
from processor_service import OrderProcessorService
from processor_service.processing import parse_utc, processed_seconds_as_dicts

# --- server-sent events -----------------------------------------------------------


def test_an_event_is_one_data_line_of_json_even_with_newlines_inside():
    event = sse_event("snapshot", {"text": "two\nlines"})
    assert event == b'event: snapshot\ndata: {"text":"two\\nlines"}\n\n'


def request_for(path="/events", method="GET"):
    return Request(EnvironBuilder(path=path, method=method).get_environ())


def body_of(response):
    return response.response  # the StreamBody itself


def test_every_open_stream_gets_each_event_published_once_encoded():
    registry = EventStreamRegistry()
    bodies = [iter(body_of(registry.response(request_for()))) for _ in range(3)]
    for body in bodies:
        assert next(body).startswith(b"retry: ")
    assert registry.open_count == 3
    assert registry.publish("snapshot", {"n": 1}) == 3
    received = [next(body) for body in bodies]
    assert received == [sse_event("snapshot", {"n": 1})] * 3
    assert len({id(event) for event in received}) == 1  # the same bytes object


def test_a_slow_page_gets_the_newest_event_not_a_backlog():
    registry = EventStreamRegistry()
    body = iter(body_of(registry.response(request_for())))
    next(body)
    for n in range(5):
        registry.publish("snapshot", {"n": n})
    assert next(body) == sse_event("snapshot", {"n": 4})


def test_a_page_that_opens_gets_the_last_event_at_once():
    registry = EventStreamRegistry()
    registry.publish("snapshot", {"n": 7})
    first = next(iter(body_of(registry.response(request_for()))))
    assert first.endswith(sse_event("snapshot", {"n": 7}))


def test_closing_a_stream_frees_it_once_even_if_never_iterated():
    registry = EventStreamRegistry()
    response = registry.response(request_for(method="HEAD"))
    other = registry.response(request_for())
    assert registry.open_count == 2
    response.close()  # what werkzeug and eventlet do when a response ends
    response.close()
    assert registry.open_count == 1
    other.close()
    assert registry.open_count == 0
    assert registry.publish("snapshot", {}) == 0


def test_ending_all_streams_ends_each_body():
    registry = EventStreamRegistry()
    body = body_of(registry.response(request_for()))
    events = iter(body)
    next(events)
    registry.end_all()
    assert list(events) == []


def test_a_quiet_stream_sends_a_heartbeat(monkeypatch):
    monkeypatch.setattr("gateway.event_streams.HEARTBEAT_SECONDS", 0.01)
    registry = EventStreamRegistry()
    events = iter(body_of(registry.response(request_for())))
    next(events)
    assert next(events) == HEARTBEAT


def test_the_response_is_an_unbuffered_event_stream():
    registry = EventStreamRegistry()
    request = request_for()
    response = registry.response(request)
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert isinstance(response.response, StreamBody)
    # eventlet would hold events back until 4096 bytes had piled up.
    assert request.environ["eventlet.minimum_write_chunk_size"] == 0


def test_a_stream_waiting_for_an_event_blocks_only_its_own_greenthread():
    registry = EventStreamRegistry()
    events = iter(body_of(registry.response(request_for())))
    next(events)
    waiting = eventlet.spawn(next, events)
    eventlet.sleep(0)
    registry.publish("snapshot", {"n": 1})
    assert waiting.wait() == sse_event("snapshot", {"n": 1})


# --- the chart window -----------------------------------------------------------------

NOW = 1_800_000_000.5


def test_the_first_read_asks_for_the_whole_window_then_only_what_may_change():
    window = ChartWindow()
    assert window.since("created", NOW) == int(NOW) - CHART_SECONDS
    window.update("created", window.since("created", NOW), {int(NOW) - 100: 3}, NOW)
    assert window.since("created", NOW + 1) == int(NOW) - SETTLE_SECONDS
    assert window.since("processed", NOW + 1) == int(NOW + 1) - CHART_SECONDS


def test_a_failed_read_is_asked_again_from_the_same_second():
    window = ChartWindow()
    window.update("created", int(NOW) - CHART_SECONDS, {}, NOW)
    # Reads at NOW + 1 .. NOW + 30 fail: nothing updated.
    assert window.since("created", NOW + 30) == int(NOW) - SETTLE_SECONDS


def test_an_update_replaces_the_seconds_it_covers_and_keeps_older_ones():
    window = ChartWindow()
    window.update("created", int(NOW) - 600, {int(NOW) - 50: 2, int(NOW) - 5: 1}, NOW)
    window.update("created", int(NOW) - 10, {int(NOW) - 4: 3}, NOW + 1)
    series = window.series(NOW + 1)
    by_second = dict(
        zip(range(series["end"] - series["seconds"] + 1, series["end"] + 1), series["created"])
    )
    assert by_second[int(NOW) - 50] == 2
    assert by_second[int(NOW) - 5] == 0
    assert by_second[int(NOW) - 4] == 3


def test_the_series_covers_the_window_up_to_the_last_whole_second():
    window = ChartWindow()
    processed = {
        int(NOW) - 1: {
            "second": int(NOW) - 1,
            "processed": 2,
            "average_execution_price": "10.50",
            "latency_p50_ms": 3.5,
            "latency_p95_ms": 9.0,
        }
    }
    window.update("processed", int(NOW) - 600, processed, NOW)
    window.update("processed", int(NOW) - 600, {int(NOW) - 700: processed[int(NOW) - 1]}, NOW)
    series = window.series(NOW)
    assert series["end"] == int(NOW) - 1 and series["seconds"] == CHART_SECONDS
    for name in ("created", "processed", "latency_p50_ms", "average_execution_price"):
        assert len(series[name]) == CHART_SECONDS
    assert series["processed"][-1] == 0  # replaced by the second update
    assert set(series["latency_p95_ms"]) == {None}


# --- assembling a snapshot -------------------------------------------------------------

CHARTS = {"end": 0, "seconds": 0}


def answers(**overrides):
    base = {
        "status": Answer(UP, {"running": True, "interval_seconds": 2.0, "orders_created": 10}),
        "backlog": Answer(UP, 1),
        "recent": Answer(
            UP,
            [
                {"id": 2, "quantity": 3, "created_at": "2026-01-01T00:00:01.000000Z"},
                {"id": 1, "quantity": 5, "created_at": "2026-01-01T00:00:00.000000Z"},
            ],
        ),
        "metrics": Answer(UP, {"total_orders_processed": 7, "average_execution_price": "12.50"}),
        "dead_letters": Answer(UP, {"count": 2, "dead_letters": ["a", "b"]}),
        "queues": Answer(UP, {"queue_depth": 4, "consumers": 2}),
    }
    base.update(overrides)
    return base


RESULTS = Answer(
    UP,
    [
        {
            "order_id": 1,
            "unit_price": "10.0000",
            "execution_price": "50.00",
            "processed_at": "2026-01-01T00:00:00.012345Z",
        }
    ],
)


def test_a_snapshot_joins_what_each_service_said():
    snapshot = assemble(answers(), RESULTS, CHARTS, NOW)
    assert snapshot["figures"] == {
        "total_orders_processed": 7,
        "average_execution_price": "12.50",
        "orders_created": 10,
        "in_flight": 3,
        "dead_lettered": 2,
    }
    assert snapshot["services"] == {
        "generator": UP,
        "processor": UP,
        "broker": UP,
        "consumers": 2,
        "queue_depth": 4,
        "outbox_backlog": 1,
    }
    assert snapshot["generator"] == {"running": True, "interval_seconds": 2.0, "orders_created": 10}
    newest, oldest = snapshot["recent_orders"]
    assert newest["execution_price"] is None and newest["latency_ms"] is None
    assert oldest == {
        "id": 1,
        "quantity": 5,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "unit_price": "10.0000",
        "execution_price": "50.00",
        "processed_at": "2026-01-01T00:00:00.012345Z",
        "latency_ms": 12.3,
    }
    assert snapshot["dead_letters"] == {"state": UP, "count": 2, "items": ["a", "b"]}
    assert snapshot["at"].endswith("Z")


def test_what_a_service_that_is_down_would_say_is_null_not_a_guess():
    snapshot = assemble(
        answers(metrics=Answer(DOWN), dead_letters=Answer(DOWN), backlog=Answer(ERROR)),
        Answer(DOWN),
        CHARTS,
        NOW,
    )
    assert snapshot["services"]["processor"] == DOWN
    assert snapshot["services"]["outbox_backlog"] is None
    assert snapshot["figures"]["total_orders_processed"] is None
    assert snapshot["figures"]["in_flight"] is None
    # The dead letters are the processor's table: not counted without it.
    assert snapshot["figures"]["dead_lettered"] is None
    assert snapshot["dead_letters"] == {"state": DOWN, "count": None, "items": []}
    assert [row["execution_price"] for row in snapshot["recent_orders"]] == [None, None]


def test_in_flight_is_never_negative():
    ahead = answers(
        metrics=Answer(UP, {"total_orders_processed": 11, "average_execution_price": "1.00"})
    )
    assert assemble(ahead, RESULTS, CHARTS, NOW)["figures"]["in_flight"] == 0


def test_latency_is_processed_at_minus_created_at():
    assert latency_ms("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:01.250049Z") == 1250.0


# --- the dead-letter actions' request body ------------------------------------------------


def body_request(data, headers=None):
    return Request(
        EnvironBuilder(
            path="/dead-letters/replay", method="POST", data=data, headers=headers
        ).get_environ()
    )


@pytest.mark.parametrize(
    ("data", "ids"),
    [
        (b"", None),
        (b"{}", None),
        (b'{"ids": null}', None),
        (b'{"ids": ["a"]}', ["a"]),
        (b'{"ids": []}', []),
    ],
)
def test_ids_come_from_the_json_body(data, ids):
    assert read_ids(body_request(data), required=False) == ids


@pytest.mark.parametrize(
    "data",
    [b"{", b"[1]", b'"x"', b'{"ids": "a"}', b'{"ids": ["a"], "all": true}', b"\xff", b"[" * 5000],
)
def test_a_body_that_is_not_an_ids_object_is_a_bad_request(data):
    with pytest.raises(BadRequest):
        read_ids(body_request(data), required=False)


def test_discard_needs_ids():
    with pytest.raises(BadRequest):
        read_ids(body_request(b"{}"), required=True)


def test_a_chunked_body_is_refused_not_read_as_empty():
    request = body_request(b'{"ids": ["a"]}', headers={"Transfer-Encoding": "chunked"})
    with pytest.raises(BadRequest):
        read_ids(request, required=False)


# --- the console's files ------------------------------------------------------------------


def test_the_page_and_its_files_are_served_with_their_types():
    page = console_files.console_page()
    assert page.content_type == "text/html; charset=utf-8"
    assert b'src="/console/console.js"' in page.get_data()
    for name, kind in console_files.ASSETS.items():
        assert console_files.console_asset(name).content_type == kind
    with pytest.raises(NotFound):
        console_files.console_asset("../openapi.yaml")


def test_the_console_loads_nothing_from_elsewhere():
    for name in ["index.html", *console_files.ASSETS]:
        with open(f"{console_files.CONSOLE_DIR}/{name}") as source:
            text = source.read().replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


# --- the contract ---------------------------------------------------------------------


def test_the_contract_names_the_queues_the_processor_consumes_and_parks_on():
    (entrypoint,) = OrderProcessorService.handle_order_created.nameko_entrypoints
    # nameko names an event handler's queue evt-<source>-<event>--<service>.<method>.
    name = f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{OrderProcessorService.name}.handle_order_created"
    assert (entrypoint.source_service, entrypoint.event_type) == (GENERATOR, ORDER_CREATED)
    assert ORDER_CREATED_QUEUE == name
    assert DEAD_LETTER_QUEUE == name + ".dead-letter"


def test_dead_letter_ids_and_limits_are_checked():
    an_id = new_dead_letter_id()
    assert validate_dead_letter_ids([an_id]) == [an_id]
    assert validate_limit(MAX_DEAD_LETTERS_PER_CALL) == MAX_DEAD_LETTERS_PER_CALL
    for bad in (
        None,
        "abc",
        [an_id.upper()],
        [an_id + "0"],
        [1],
        [an_id] * (MAX_DEAD_LETTERS_PER_CALL + 1),
    ):
        with pytest.raises(InvalidArgument):
            validate_dead_letter_ids(bad)
    for bad in (0, MAX_DEAD_LETTERS_PER_CALL + 1, True, "5", 2.0):
        with pytest.raises(InvalidArgument):
            validate_limit(bad)


def test_since_is_raised_to_the_chart_window():
    assert validate_since(int(NOW) - 5, NOW) == int(NOW) - 5
    assert validate_since(0, NOW) == int(NOW) - CHART_SECONDS
    with pytest.raises(InvalidArgument):
        validate_since("1", NOW)


# --- what the processor reports per second ----------------------------------------------------


def test_processed_seconds_average_half_up_and_report_latency_in_ms():
    rows = processed_seconds_as_dicts(
        {11: (2, Decimal("10.01"), 1500, 2049), 10: (1, Decimal("3.00"), None, None)}
    )
    assert rows == [
        {
            "second": 10,
            "processed": 1,
            "average_execution_price": "3.00",
            "latency_p50_ms": None,
            "latency_p95_ms": None,
        },
        {
            "second": 11,
            "processed": 2,
            "average_execution_price": "5.01",
            "latency_p50_ms": 1.5,
            "latency_p95_ms": 2.0,
        },
    ]
    json.dumps(rows)


def test_an_order_created_at_is_read_as_naive_utc():
    assert parse_utc("2026-01-01T10:00:00.000001Z") == datetime(2026, 1, 1, 10, 0, 0, 1)
    assert parse_utc("2026-01-01T12:00:00+02:00") == datetime(2026, 1, 1, 10)
    assert parse_utc(None) is None and parse_utc("yesterday") is None

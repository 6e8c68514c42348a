"""Traces: one order through the real services (in-process containers on the
real broker and database) is one trace, its spans parented as
docs/telemetry.md says, recorded by the SDK's in-memory exporter."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from harness.processes import wait_until
from tests.support.services import wait_processed


class RecordingProcessor(SimpleSpanProcessor):
    """Exports only while a test here records: the global provider, once
    set, stays for the rest of the test session."""

    recording = False

    def on_end(self, span):
        if self.recording:
            super().on_end(span)


EXPORTER = InMemorySpanExporter()
PROCESSOR = RecordingProcessor(EXPORTER)


@pytest.fixture
def spans():
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(PROCESSOR)
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    PROCESSOR.recording = True
    yield EXPORTER
    PROCESSOR.recording = False
    EXPORTER.clear()


@pytest.fixture
def services(services):
    """All three services, started (the fixture is tests/integration/conftest.py's)."""
    return services.start("generator", "processor", "gateway")


def finished(exporter, *names):
    """The finished spans by name, once every one named has ended."""

    def collect():
        by_name = {}
        for span in exporter.get_finished_spans():
            by_name.setdefault(span.name, []).append(span)
        return by_name if all(name in by_name for name in names) else None

    wait_until(collect, 15, message=f"spans {names}")
    return collect()


def parent_of(span, spans_by_name):
    return next(
        candidate
        for candidates in spans_by_name.values()
        for candidate in candidates
        if candidate.context.span_id == span.parent.span_id
    )


def test_one_order_is_one_trace_across_the_services(services, spans):
    with services.rpc() as rpc:
        order = rpc.order_generator.create_order(3)
    wait_processed(services)

    names = (
        "order_generator.create_order",
        "commit order",
        "OrderCreated publish",
        "order_processor.handle_order_created",
        "order_generator.get_orders",
        "insert order_process",
    )
    (create,) = finished(spans, *names)["order_generator.create_order"]
    # The order's trace: spans of services other tests left running in this
    # process (their timers) are in traces of their own.
    in_trace = [
        s for s in spans.get_finished_spans() if s.context.trace_id == create.context.trace_id
    ]
    by_name = {}
    for span in in_trace:
        by_name.setdefault(span.name, []).append(span)
    assert set(names) <= set(by_name), sorted(by_name)
    create, commit, publish, handle, confirm, insert = (by_name[name][0] for name in names)

    assert create.parent is None  # a standalone RPC client sends no context
    assert create.kind == SpanKind.SERVER
    assert parent_of(commit, by_name) is create
    assert parent_of(publish, by_name) is commit
    assert publish.kind == SpanKind.PRODUCER
    assert parent_of(handle, by_name) is publish
    assert handle.kind == SpanKind.CONSUMER
    assert [link.context.span_id for link in handle.links] == [publish.context.span_id]
    assert parent_of(confirm, by_name) is handle
    assert parent_of(insert, by_name) is handle
    assert order["id"] > 0


def test_a_gateway_request_continues_the_clients_trace_into_its_rpc(services, spans):
    client_trace = "0af7651916cd43dd8448eb211c80319c"
    response, _ = services.get(
        "/orders/1", headers={"traceparent": f"00-{client_trace}-b7ad6b7169203331-01"}
    )
    assert response.status_code == 404

    by_name = finished(spans, "gateway.get_order", "order_generator.get_order")
    (request,) = by_name["gateway.get_order"]
    (rpc,) = by_name["order_generator.get_order"]
    assert request.kind == SpanKind.SERVER
    assert trace.format_trace_id(request.context.trace_id) == client_trace
    assert request.parent.span_id == 0xB7AD6B7169203331
    assert rpc.parent.span_id == request.context.span_id

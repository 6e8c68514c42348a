"""A span for every nameko worker, in the trace of whoever caused it.

nameko 2.14 has no OpenTelemetry instrumentation (the package for it needs
nameko 3), so `Tracing` does it as a dependency provider: in
`worker_setup`, which nameko runs in the worker's own greenthread, it opens
the worker's span and makes it current there (each greenthread has its own
context); in `worker_teardown`, after the RPC reply or the event's ack, it
ends it. The span continues the trace context the worker was started with:

- RPC and events: nameko hands each worker the `nameko.*` headers of its
  message as `worker_ctx.data`, and sends `worker_ctx.context_data` (a copy
  of `data`) as the headers of every RPC request and event the worker makes.
  So the span's context goes into `data["traceparent"]`, and the callee's
  worker finds its parent there.
- HTTP: the request's `traceparent` header, if the client sent one.
- Timers: a new trace.
- A batch of events (order_pipeline.extensions.batch_events): the batch handler puts
  every event's traceparent under BATCH_TRACEPARENTS; the span continues the
  first event's trace and links to each event's (see docs/telemetry.md).

It also names the running service for the log lines (order_pipeline.logs).
"""

from weakref import WeakKeyDictionary

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler
from opentelemetry import context, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from order_pipeline import logs, trace_context

# Context data key under which a batch's worker gets its events' traceparents.
BATCH_TRACEPARENTS = "batch_traceparents"


def span_kind(entrypoint) -> SpanKind:
    if isinstance(entrypoint, (Rpc, HttpRequestHandler)):
        return SpanKind.SERVER
    if isinstance(entrypoint, EventHandler):
        return SpanKind.CONSUMER
    return SpanKind.INTERNAL


def incoming_carrier(worker_ctx) -> dict:
    """Where the worker's caller put its trace context."""
    if isinstance(worker_ctx.entrypoint, HttpRequestHandler) and worker_ctx.args:
        headers = getattr(worker_ctx.args[0], "headers", None)
        if headers is not None:
            return {key: headers[key] for key in trace_context.TRACE_KEYS if key in headers}
        return {}
    return worker_ctx.data


class WorkerTrace:
    """What the service method sees as `self.tracing`."""

    def __init__(self, event_traceparents: list[str]):
        self.event_traceparents = event_traceparents

    def event_trace_id(self, index: int) -> str | None:
        """The trace id of the batch's `index`-th event (its order's trace)."""
        if index >= len(self.event_traceparents):
            return None
        carrier = {trace_context.TRACEPARENT: self.event_traceparents[index]}
        return trace_context.trace_id_of(trace_context.span_context_of(carrier))


class Tracing(DependencyProvider):
    """`tracing = Tracing()` on a service class."""

    def setup(self):
        if self.container.service_name not in logs.process_services:
            logs.process_services.append(self.container.service_name)
        trace_context.configure(logs.process_services)
        self.spans = WeakKeyDictionary()

    def get_dependency(self, worker_ctx):
        return WorkerTrace(list(worker_ctx.data.get(BATCH_TRACEPARENTS) or ()))

    def worker_setup(self, worker_ctx):
        logs.current_service.set(worker_ctx.service_name)
        # Not to be sent on with the worker's own calls.
        event_traceparents = worker_ctx.data.pop(BATCH_TRACEPARENTS, None) or ()
        links = []
        for traceparent in event_traceparents:
            span_context = trace_context.span_context_of({trace_context.TRACEPARENT: traceparent})
            if span_context is not None:
                links.append(Link(span_context))
        span = trace_context.tracer().start_span(
            f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}",
            context=trace_context.carrier_context(incoming_carrier(worker_ctx)),
            kind=span_kind(worker_ctx.entrypoint),
            links=links,
        )
        token = context.attach(trace.set_span_in_context(span))
        self.spans[worker_ctx] = (span, token)
        # What the worker's RPC calls and events carry (nothing of ours
        # when tracing is off: then the caller's context passes on as is).
        worker_ctx.data.update(trace_context.current_carrier())

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        entry = self.spans.get(worker_ctx)
        if entry is not None and exc_info is not None:
            entry[0].record_exception(exc_info[1])
            entry[0].set_status(Status(StatusCode.ERROR, str(exc_info[1])))

    def worker_teardown(self, worker_ctx):
        entry = self.spans.pop(worker_ctx, None)
        if entry is not None:
            span, token = entry
            span.end()
            context.detach(token)

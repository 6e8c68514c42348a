"""OpenTelemetry traces, configured only by the standard OTEL_* variables.

OTEL_TRACES_EXPORTER is `none` unless set (the SDK's own default would be
`otlp`): then no SDK provider is set up, every span below is the API's
non-recording span, and tracing costs a few attribute look-ups per worker.
`console` writes each span as one line of JSON to standard output, `otlp` sends them over
OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT; OTEL_SDK_DISABLED=true turns all
of it off, and OTEL_SERVICE_NAME names the process (by default the nameko
services it runs).

The trace context crosses processes as a W3C `traceparent` (and
`tracestate`): in a nameko worker's context data, which nameko sends as
`nameko.*` AMQP headers with every RPC request and event and hands to the
worker it starts for them (order_pipeline.extensions.tracing), in the outbox row of
each order, and in the headers of the OrderCreated event published for it.
"""

import logging
import os

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from order_pipeline.errors import StartupError

log = logging.getLogger(__name__)

TRACER_NAME = "order_pipeline"
EXPORTERS = ("none", "console", "otlp")
# The keys of a trace context in a carrier (worker context data, headers).
TRACEPARENT = "traceparent"
TRACE_KEYS = (TRACEPARENT, "tracestate")

_propagator = TraceContextTextMapPropagator()
_configured = False


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def recording() -> bool:
    """Whether a tracer provider that records spans is set in this process
    (by `configure`, or a test's): without one a span of ours adds nothing
    that a caller cannot pass on itself."""
    return not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )


def configure(service_names: list[str]) -> None:
    """Set up the SDK once per process, as the OTEL_* variables say."""
    global _configured
    if _configured:
        return
    _configured = True
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower() or "none"
    if exporter_name not in EXPORTERS:
        raise StartupError(
            f"OTEL_TRACES_EXPORTER must be one of {', '.join(EXPORTERS)}, got {exporter_name!r}"
        )
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    if disabled or exporter_name == "none":
        return
    # Imported here: with tracing off the SDK is never loaded.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        # One span a line (the SDK's default indents each over many lines).
        exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    # Attributes given here would override OTEL_SERVICE_NAME: a default only.
    attributes = {}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = "+".join(service_names) or "order_pipeline"
    resource = Resource.create(attributes)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on: spans go to the %s exporter", exporter_name)


def carrier_context(carrier: dict | None) -> context.Context | None:
    """The trace context a carrier holds, or None."""
    if not carrier or not carrier.get(TRACEPARENT):
        return None
    return _propagator.extract(carrier)


def span_context_of(carrier: dict | None) -> trace.SpanContext | None:
    ctx = carrier_context(carrier)
    if ctx is None:
        return None
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


def current_carrier(ctx: context.Context | None = None) -> dict:
    """{"traceparent": ...} (and "tracestate") for the current span, or {}."""
    carrier: dict = {}
    _propagator.inject(carrier, context=ctx)
    return carrier


def current_traceparent() -> str | None:
    return current_carrier().get(TRACEPARENT)


def trace_id_of(span_context: trace.SpanContext | None) -> str | None:
    if span_context is None or not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id)


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span().get_span_context())

"""Tracing's set-up from the standard OTEL_* variables."""

import pytest
from opentelemetry import trace

from order_pipeline import trace_context
from order_pipeline.errors import StartupError


@pytest.fixture
def configure(monkeypatch):
    """trace_context.configure as on a fresh process; [providers it set]."""
    monkeypatch.setattr(trace_context, "_configured", False)
    installed = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)

    def run(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        trace_context.configure(["order_processor"])
        return installed

    return run


def test_no_sdk_is_set_up_by_default(configure):
    assert configure() == []


def test_a_disabled_sdk_sets_up_nothing_whatever_the_exporter(configure):
    assert configure(OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true") == []


def test_the_console_exporter_sets_up_a_provider_named_for_the_services(configure):
    (provider,) = configure(OTEL_TRACES_EXPORTER="console")
    assert provider.resource.attributes["service.name"] == "order_processor"
    provider.shutdown()


def test_an_unknown_exporter_fails_at_start_naming_the_variable(configure):
    with pytest.raises(StartupError, match=r"\bOTEL_TRACES_EXPORTER\b"):
        configure(OTEL_TRACES_EXPORTER="zipkin")


def test_a_carrier_round_trips_a_span_context():
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    span_context = trace_context.span_context_of({trace_context.TRACEPARENT: traceparent})
    assert trace_context.trace_id_of(span_context) == "0af7651916cd43dd8448eb211c80319c"
    assert trace_context.span_context_of({}) is None
    assert trace_context.span_context_of({trace_context.TRACEPARENT: "garbage"}) is None


def test_otel_service_name_names_the_process(configure, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pricing-eu")
    (provider,) = configure(OTEL_TRACES_EXPORTER="console")
    assert provider.resource.attributes["service.name"] == "pricing-eu"
    provider.shutdown()

"""The parts of each process's own metrics endpoint that need no server:
tests/integration/test_runtime_metrics.py serves them from real services."""

from order_pipeline.extensions.runtime_metrics import entrypoint_kind, runtime_registry


def test_the_runtime_registry_has_process_worker_and_pool_figures():
    registry, durations = runtime_registry("order_processor", 10, lambda: 3)
    durations.labels("order_processor", "handle_order_created", "event", "ok").observe(0.2)
    families = {family.name: family for family in registry.collect()}
    for name in (
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "order_pipeline_worker_duration_seconds",
        "order_pipeline_workers_active",
        "order_pipeline_workers_max",
    ):
        assert name in families, name
    assert families["order_pipeline_workers_active"].samples[0].value == 3
    assert families["order_pipeline_workers_max"].samples[0].value == 10


def test_entrypoints_are_named_by_kind():
    from gateway.service import GatewayService
    from generator_service.service import OrderGeneratorService
    from processor_service import OrderProcessorService

    kinds = {
        (cls.__name__, method): entrypoint_kind(entrypoint)
        for cls in (OrderGeneratorService, OrderProcessorService, GatewayService)
        for method, function in vars(cls).items()
        for entrypoint in getattr(function, "nameko_entrypoints", ())
    }
    assert kinds[("OrderGeneratorService", "generate_order")] == "timer"
    assert kinds[("OrderGeneratorService", "status")] == "rpc"
    assert kinds[("OrderProcessorService", "handle_order_created")] == "event"
    assert kinds[("GatewayService", "metrics")] == "http"

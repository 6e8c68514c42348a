"""The gateway's settings, each read and checked by one function."""

from dataclasses import dataclass

from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.web.server import BindAddress

from order_pipeline.config import setting
from order_pipeline.settings import MetricsAddress, bind_address, metrics_address


def gateway_token(config: dict) -> str:
    return setting(config, "GATEWAY_TOKEN", str)


def gateway_max_workers(config: dict) -> int:
    """The gateway's worker pool (the other services take nameko's
    max_workers); at least 3: two workers are kept for its cheap routes."""
    return setting(config, "GATEWAY_MAX_WORKERS", int, minimum=3)


def max_request_bytes(config: dict) -> int:
    return setting(config, "MAX_REQUEST_BYTES", int, minimum=0)


@dataclass(frozen=True)
class GatewayLimits:
    max_connections: int  # open connections, streams not included
    max_streams: int  # long-lived responses (server-sent events)
    header_timeout_seconds: float  # to wait for a request and read its head
    request_queue_seconds: float  # to wait for room once the head is in


def gateway_limits(config: dict) -> GatewayLimits:
    return GatewayLimits(
        max_connections=setting(config, "MAX_CONNECTIONS", int, minimum=1),
        max_streams=setting(config, "MAX_STREAMS", int, minimum=0),
        header_timeout_seconds=setting(config, "HEADER_TIMEOUT_SECONDS", float, minimum=0.001),
        request_queue_seconds=setting(config, "REQUEST_QUEUE_SECONDS", float, minimum=0.001),
    )


def web_server_address(config: dict) -> BindAddress:
    """WEB_SERVER_ADDRESS (`[host:]port`) as nameko parses it. nameko reads
    the key itself too; the gateway binds through this reader so that a
    malformed value is one line at start-up."""
    # str(): YAML makes a bare `8000` an int.
    return bind_address(WEB_SERVER_CONFIG_KEY, setting(config, "WEB_SERVER_ADDRESS", str))


def gateway_metrics_address(config: dict) -> MetricsAddress | None:
    return metrics_address(config, "GATEWAY_METRICS_ADDRESS")


@dataclass(frozen=True)
class InstanceRules:
    """When the gateway shows an instance as silent, or a processor as stalled
    (gateway.monitoring)."""

    silent_seconds: float  # no heartbeat for longer than this
    stall_seconds: float  # no event taken for this long while events wait


def instance_rules(config: dict) -> InstanceRules:
    return InstanceRules(
        silent_seconds=setting(config, "INSTANCE_SILENT_SECONDS", float, minimum=0.1),
        stall_seconds=setting(config, "PROCESSOR_STALL_SECONDS", float, minimum=0.1),
    )

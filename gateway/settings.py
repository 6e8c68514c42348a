"""The gateway's settings, each read and checked by one function."""

from dataclasses import dataclass

from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.web.server import BindAddress

from gateway.tokens import token_problem
from order_pipeline.config import setting
from order_pipeline.errors import StartupError
from order_pipeline.settings import MetricsAddress, bind_address, metrics_address


@dataclass(frozen=True)
class GatewayTokens:
    control: tuple[str, ...]  # GATEWAY_TOKEN, and GATEWAY_NEXT_TOKEN while rotating
    read: tuple[str, ...]  # GATEWAY_READ_TOKEN; empty: reads are open


def gateway_tokens(config: dict) -> GatewayTokens:
    """GATEWAY_TOKEN, GATEWAY_NEXT_TOKEN and GATEWAY_READ_TOKEN, each unset
    or a token fit to guard the gateway (gateway.tokens), and all distinct."""
    values = {
        "GATEWAY_TOKEN": setting(config, "GATEWAY_TOKEN", str),
        "GATEWAY_NEXT_TOKEN": setting(config, "GATEWAY_NEXT_TOKEN", str),
        "GATEWAY_READ_TOKEN": setting(config, "GATEWAY_READ_TOKEN", str),
    }
    for key, value in values.items():
        problem = token_problem(value) if value else None
        if problem is not None:
            raise StartupError(f"{key} is refused: {problem}")
    if values["GATEWAY_NEXT_TOKEN"] and not values["GATEWAY_TOKEN"]:
        raise StartupError("GATEWAY_NEXT_TOKEN is set without GATEWAY_TOKEN; set both, or neither")
    given = [value for value in values.values() if value]
    if len(given) != len(set(given)):
        raise StartupError(
            "GATEWAY_TOKEN, GATEWAY_NEXT_TOKEN and GATEWAY_READ_TOKEN must differ from each other"
        )
    control = tuple(v for v in (values["GATEWAY_TOKEN"], values["GATEWAY_NEXT_TOKEN"]) if v)
    read = (values["GATEWAY_READ_TOKEN"],) if values["GATEWAY_READ_TOKEN"] else ()
    return GatewayTokens(control=control, read=read)


def gateway_refusals_before_slowdown(config: dict) -> int:
    """Wrong tokens one address may send within a minute before it is made
    to wait (gateway.auth); 0: never."""
    return setting(config, "GATEWAY_REFUSALS_BEFORE_SLOWDOWN", int, minimum=0)


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


@dataclass(frozen=True)
class GatewayTls:
    cert_file: str  # the certificate, with its chain (and the key, if key_file is None)
    key_file: str | None


def gateway_tls(config: dict) -> GatewayTls | None:
    """GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE: HTTPS with them,
    plain HTTP with neither (gateway.tls reads and checks the files)."""
    cert_file = setting(config, "GATEWAY_TLS_CERT_FILE", str, default="").strip()
    key_file = setting(config, "GATEWAY_TLS_KEY_FILE", str, default="").strip()
    if key_file and not cert_file:
        raise StartupError(f"GATEWAY_TLS_KEY_FILE={key_file} is set without GATEWAY_TLS_CERT_FILE")
    return GatewayTls(cert_file, key_file or None) if cert_file else None


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

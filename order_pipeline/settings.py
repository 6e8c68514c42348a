"""Every setting config.yml holds is read here, by one function each.

Services and extensions never index the config for a setting themselves:
they call these readers (directly, or through the `Settings` dependency for
a service's own group), so each setting has one type, one minimum and one
error message. A bad value is a StartupError naming the setting, which
`nameko run` prints as one line before exiting with status 1.

nameko and nameko-sqlalchemy read their own keys (DB_URIS, max_workers,
SERVICE_CONTAINER_CLS, LOGGING), and AMQP_URI and WEB_SERVER_ADDRESS too.
Inside LOGGING, LOG_LEVEL goes to `dictConfig` as it is, and LOG_FORMAT to
`order_pipeline.logs.console_formatter`, which checks it with `log_format`.
"""

from dataclasses import dataclass
from decimal import Decimal

from nameko.constants import AMQP_URI_CONFIG_KEY, WEB_SERVER_CONFIG_KEY
from nameko.exceptions import ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.web.server import BindAddress, parse_address

from order_contract import MAX_ORDERS_PER_CALL, MAX_QUANTITY
from order_pipeline.config import setting
from order_pipeline.errors import StartupError


def amqp_uri(config: dict) -> str:
    value = setting(config, "AMQP_URI", str)
    if not value:
        raise StartupError(f"{AMQP_URI_CONFIG_KEY} is not set")
    return value


def db_uri(config: dict) -> str:
    return setting(config, "DB_URI", str)


def rpc_timeout_seconds(config: dict) -> float:
    return setting(config, "RPC_TIMEOUT_SECONDS", float, minimum=0.001)


QUEUE_TYPES = ("classic", "quorum")


def queue_type(config: dict) -> str:
    """QUEUE_TYPE: the type of every durable queue the services declare
    (see order_pipeline/queues.py)."""
    value = setting(config, "QUEUE_TYPE", str).strip().lower()
    if value not in QUEUE_TYPES:
        raise StartupError(f"QUEUE_TYPE must be 'classic' or 'quorum', got {value!r}")
    return value


def rpc_reply_queue_expires_seconds(config: dict) -> float:
    """How long a service's RPC reply queue outlives its consumer (the
    broker then deletes it: the container that owned it is gone)."""
    return setting(config, "RPC_REPLY_QUEUE_EXPIRES_SECONDS", float, minimum=1)


LOG_FORMATS = ("text", "json")


def log_format(value: str) -> str:
    """LOG_FORMAT, as config.yml's LOGGING block hands it to the console
    formatter (nameko applies LOGGING before any service starts)."""
    name = str(value).strip().lower()
    if name not in LOG_FORMATS:
        raise StartupError(f"LOG_FORMAT must be 'text' or 'json', got {value!r}")
    return name


# --- order generator -----------------------------------------------------


def order_interval_seconds(config: dict) -> float:
    return setting(config, "ORDER_INTERVAL_SECONDS", float, minimum=0.001)


def outbox_sweep_seconds(config: dict) -> float:
    return setting(config, "OUTBOX_SWEEP_SECONDS", float, minimum=0.01)


@dataclass(frozen=True)
class GeneratorSettings:
    interval_seconds: float
    generate_on_first_start: bool
    quantity_min: int
    quantity_max: int
    # Orders each tick creates, in one transaction: the timer runs one tick
    # at a time, so this, not the interval, lifts its rate past what one
    # transaction per tick allows.
    orders_per_tick: int = 1


def generator_settings(config: dict) -> GeneratorSettings:
    settings = GeneratorSettings(
        interval_seconds=order_interval_seconds(config),
        generate_on_first_start=setting(config, "GENERATE_ON_FIRST_START", bool),
        quantity_min=setting(config, "ORDER_QUANTITY_MIN", int, minimum=1),
        quantity_max=setting(config, "ORDER_QUANTITY_MAX", int, minimum=1),
        orders_per_tick=setting(config, "ORDERS_PER_TICK", int, minimum=1),
    )
    if settings.orders_per_tick > MAX_ORDERS_PER_CALL:
        raise StartupError(f"ORDERS_PER_TICK must not exceed {MAX_ORDERS_PER_CALL}")
    if not settings.quantity_min <= settings.quantity_max <= MAX_QUANTITY:
        raise StartupError(
            "ORDER_QUANTITY_MIN must not exceed ORDER_QUANTITY_MAX, "
            f"which must not exceed {MAX_QUANTITY}"
        )
    return settings


# --- order processor -----------------------------------------------------


@dataclass(frozen=True)
class PriceSettings:
    source: str  # "simulated" or "http"
    base: Decimal
    max_step: Decimal
    band: Decimal
    seed: str | None
    feed_url: str
    feed_timeout_seconds: float


PRICE_SOURCES = ("simulated", "http")


def price_settings(config: dict) -> PriceSettings:
    source = setting(config, "PRICE_SOURCE", str).strip().lower()
    if source not in PRICE_SOURCES:
        raise StartupError(f"PRICE_SOURCE must be 'simulated' or 'http', got {source!r}")
    feed_url = setting(config, "PRICE_FEED_URL", str)
    if source == "http" and not feed_url.startswith(("http://", "https://")):
        raise StartupError("PRICE_SOURCE=http needs PRICE_FEED_URL (http:// or https://)")
    return PriceSettings(
        source=source,
        base=setting(config, "PRICE_BASE", Decimal),
        max_step=setting(config, "PRICE_MAX_STEP", Decimal),
        band=setting(config, "PRICE_BAND", Decimal),
        seed=setting(config, "PRICE_SEED", str) or None,
        feed_url=feed_url,
        feed_timeout_seconds=setting(config, "PRICE_FEED_TIMEOUT_SECONDS", float, minimum=0.001),
    )


@dataclass(frozen=True)
class BatchSettings:
    size: int  # events per batch
    in_flight: int  # batches handled at once per processor


def batch_settings(config: dict) -> BatchSettings:
    return BatchSettings(
        size=setting(config, "EVENT_BATCH_SIZE", int, minimum=1),
        in_flight=setting(config, "EVENT_BATCHES_IN_FLIGHT", int, minimum=1),
    )


@dataclass(frozen=True)
class RetrySettings:
    first_delay_seconds: float
    max_delay_seconds: float
    max_attempts: int  # 0: never dead-letter a message for its attempts


def retry_settings(config: dict) -> RetrySettings:
    first_delay = setting(config, "RETRY_FIRST_DELAY_SECONDS", float, minimum=0.01)
    return RetrySettings(
        first_delay_seconds=first_delay,
        max_delay_seconds=setting(config, "RETRY_MAX_DELAY_SECONDS", float, minimum=first_delay),
        max_attempts=setting(config, "RETRY_MAX_ATTEMPTS", int, minimum=0),
    )


# --- gateway ---------------------------------------------------------------


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


MAX_PORT = 65535


def web_server_address(config: dict) -> BindAddress:
    """WEB_SERVER_ADDRESS (`[host:]port`) as nameko parses it. nameko reads
    the key itself too; the gateway binds through this reader so that a
    malformed value is one line at start-up."""
    # str(): YAML makes a bare `8000` an int.
    return bind_address(WEB_SERVER_CONFIG_KEY, setting(config, "WEB_SERVER_ADDRESS", str))


def bind_address(key: str, text: str) -> BindAddress:
    """`[host:]port` as nameko parses it, or a StartupError naming `key`."""
    try:
        address = parse_address(text)
    except ConfigurationError:
        address = None
    if address is None or address.port > MAX_PORT:
        raise StartupError(
            f"setting {key} must be [host:]port with a port from 0 to {MAX_PORT}, got {text!r}"
        )
    return address


# --- each process's own metrics endpoint (order_pipeline.runtime_metrics) ----
# One setting per service, so that services run in one process (`make run`)
# each get a port of their own. Empty: no endpoint.


@dataclass(frozen=True)
class MetricsAddress:
    setting: str  # the setting it came from, for messages
    host: str
    port: int


def _metrics_address(key: str, text: str) -> MetricsAddress | None:
    if not text.strip():
        return None
    address = bind_address(key, text.strip())
    return MetricsAddress(setting=key, host=address.address, port=address.port)


def generator_metrics_address(config: dict) -> MetricsAddress | None:
    text = setting(config, "GENERATOR_METRICS_ADDRESS", str)
    return _metrics_address("GENERATOR_METRICS_ADDRESS", text)


def processor_metrics_address(config: dict) -> MetricsAddress | None:
    text = setting(config, "PROCESSOR_METRICS_ADDRESS", str)
    return _metrics_address("PROCESSOR_METRICS_ADDRESS", text)


def gateway_metrics_address(config: dict) -> MetricsAddress | None:
    text = setting(config, "GATEWAY_METRICS_ADDRESS", str)
    return _metrics_address("GATEWAY_METRICS_ADDRESS", text)


class Settings(DependencyProvider):
    """`settings = Settings(generator_settings)`: the worker gets the
    reader's result, parsed once in `setup()`, so a bad value stops the
    service at start-up rather than failing its first worker."""

    def __init__(self, read):
        self.read = read

    def setup(self):
        self.value = self.read(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.value

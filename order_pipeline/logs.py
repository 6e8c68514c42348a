"""Log lines as text or JSON (LOG_FORMAT), and the per-order lines.

config.yml's LOGGING block builds the console formatter with
`console_formatter`, so nameko's own `dictConfig` call applies LOG_FORMAT.
The per-order lines (`Order <id> OrderExecutionPrice <price>`, `Order
created: id=<id>`) go through the `orders` logger at INFO, whatever
LOG_LEVEL says, to the same standard output: they carry a timestamp, follow
LOG_FORMAT, and in JSON name their order (and trace, when one is known).

Every line goes out with the passwords of the URIs in it masked
(`order_pipeline.broker.mask_uri`): nameko's "Error connecting to broker"
warning masks only the first node of an AMQP_URI that lists several.
"""

import logging
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from order_pipeline.broker import mask_uri
from order_pipeline.settings import log_format
from order_pipeline.times import iso_z_of_epoch
from order_pipeline.trace_context import current_trace_id

ORDER_LOGGER = "orders"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

order_log = logging.getLogger(ORDER_LOGGER)

# The nameko service whose worker is running in this greenthread (set by
# order_pipeline.extensions.tracing.Tracing); each greenthread has its own context.
current_service: ContextVar[str | None] = ContextVar("current_service", default=None)
# Services started in this process, for lines logged outside any worker.
process_services: list[str] = []


def log_order(message: str, order_id: int, trace_id: str | None = None) -> None:
    """One per-order line, with its order id (and trace id) attached."""
    extra: dict = {"order_id": order_id}
    if trace_id:
        extra["trace_id"] = trace_id
    order_log.info(message, extra=extra)


def service_name() -> str:
    return current_service.get() or "+".join(process_services) or "nameko"


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_uri(super().format(record))


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, service,
    logger, message, then order_id, trace_id and exc_info where known."""

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        log_data["time"] = iso_z_of_epoch(record.created)
        log_data["level"] = record.levelname
        log_data["service"] = getattr(record, "service", None) or service_name()
        log_data["logger"] = record.name
        log_data["message"] = record.message
        order_id = getattr(record, "order_id", None)
        if order_id is not None:
            log_data["order_id"] = order_id
        trace_id = getattr(record, "trace_id", None) or current_trace_id()
        if trace_id:
            log_data["trace_id"] = trace_id
        log_data.update(message_dict)  # exc_info, stack_info

    def format(self, record: logging.LogRecord) -> str:
        return mask_uri(super().format(record))


def console_formatter(log_format_name: str) -> logging.Formatter:
    """The formatter LOG_FORMAT names (`text` or `json`); an unknown name
    stops start-up with one line (StartupError passes through dictConfig)."""
    if log_format(log_format_name) == "json":
        return JsonLineFormatter()
    return MaskingFormatter(TEXT_FORMAT)

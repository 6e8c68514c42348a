"""The infrastructure settings every service reads, one function each.

Each service reads its own settings in its own `settings.py`
(generator_service, processor_service, gateway), and an extension reads the
settings that tune it in its own module (the retry and batch settings of
the event handlers). Nothing indexes the config for a setting directly, so
each setting has one type, one minimum and one error message. A bad value
is a StartupError naming the setting, which `nameko run` prints as one line
before exiting with status 1.

nameko and nameko-sqlalchemy read their own keys (DB_URIS, max_workers,
SERVICE_CONTAINER_CLS, LOGGING), and AMQP_URI and WEB_SERVER_ADDRESS too.
Inside LOGGING, LOG_LEVEL goes to `dictConfig` as it is, and LOG_FORMAT to
`order_pipeline.logs.console_formatter`, which checks it with `log_format`.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import ConfigurationError
from nameko.web.server import BindAddress, parse_address
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from order_pipeline.config import setting
from order_pipeline.errors import StartupError
from order_pipeline.tls import TlsFiles, tls_files


def amqp_uri(config: dict) -> str:
    value = setting(config, "AMQP_URI", str)
    if not value:
        raise StartupError(f"{AMQP_URI_CONFIG_KEY} is not set")
    return value


def db_uri(config: dict) -> str:
    return checked_db_uri(setting(config, "DB_URI", str))


# The drivers the project is built and tested with (PyMySQL, to MariaDB or
# MySQL); an example to show in the error.
DB_URI_SCHEMES = ("mysql+pymysql", "mariadb+pymysql")
DB_URI_EXAMPLE = "mysql+pymysql://user:password@host:3306/orders"


def checked_db_uri(value: str) -> str:
    """`value` if it is a database URL the services can use, else a
    StartupError saying what DB_URI should look like. The value itself is
    not repeated: it may hold a password, unparsed."""
    try:
        scheme = make_url(value).drivername
    except (ArgumentError, ValueError):
        raise StartupError(
            f"setting DB_URI is not a database URL: expected {DB_URI_EXAMPLE}"
        ) from None
    if scheme not in DB_URI_SCHEMES:
        raise StartupError(
            f"setting DB_URI has the scheme {scheme}:// which the services cannot use: "
            f"expected {DB_URI_EXAMPLE}"
        )
    return value


def rpc_timeout_seconds(config: dict) -> float:
    return setting(config, "RPC_TIMEOUT_SECONDS", float, minimum=0.001)


def startup_wait_seconds(config: dict) -> float:
    """How long a starting service waits for its broker and database
    (order_pipeline.startup); a config made by hand without it waits not
    at all."""
    return setting(config, "STARTUP_WAIT_SECONDS", float, minimum=0, default=0)


def db_io_timeout_seconds(config: dict) -> float | None:
    """How long a service waits on a database connection that sends nothing
    back, reading or writing, before it drops the connection (PyMySQL's
    read and write timeouts); None (0): for ever. Without it, a connection
    whose packets a network dropped for a while comes back only at TCP's
    next retransmission, up to two minutes after the network does."""
    seconds = setting(config, "DB_IO_TIMEOUT_SECONDS", float, minimum=0, default=30.0)
    return seconds or None


def amqp_tls(config: dict) -> TlsFiles | None:
    """The broker's TLS files, or None for a plain amqp:// AMQP_URI (a
    config made by hand without these settings means none).

    TLS is on when AMQP_URI is amqps:// (every node of it), with the
    broker's certificate and host name always checked: against
    AMQP_SSL_CA_FILE, or the system's CAs when it is empty. With
    AMQP_SSL_CERT_FILE (and AMQP_SSL_KEY_FILE) the services present that
    certificate, and log in as its user (RabbitMQ's EXTERNAL mechanism)
    unless AMQP_URI holds a password (order_pipeline.broker)."""
    files = tls_files(
        "AMQP_SSL",
        setting(config, "AMQP_SSL_CA_FILE", str, default=""),
        setting(config, "AMQP_SSL_CERT_FILE", str, default=""),
        setting(config, "AMQP_SSL_KEY_FILE", str, default=""),
    )
    schemes = {urlsplit(node.strip()).scheme.lower() for node in amqp_uri(config).split(";")}
    schemes.discard("")
    if schemes == {"amqps"}:
        return files or TlsFiles(prefix="AMQP_SSL")
    if "amqps" in schemes:
        raise StartupError(
            f"{AMQP_URI_CONFIG_KEY} lists amqps:// and plain nodes; use amqps:// for every node"
        )
    if files is not None:
        named = next(
            files.names(field)
            for field in ("ca_file", "cert_file", "key_file")
            if getattr(files, field)
        )
        raise StartupError(
            f"{named} is set, but {AMQP_URI_CONFIG_KEY} is not amqps://, so it would not be "
            f"used: use amqps:// in {AMQP_URI_CONFIG_KEY}, or unset it"
        )
    return None


def db_tls(config: dict) -> TlsFiles | None:
    """The database's TLS files, or None (no DB_SSL_* set).

    With DB_SSL_CA_FILE (or a client certificate, DB_SSL_CERT_FILE, which
    then trusts the system's CAs), every connection to DB_URI uses TLS and
    checks the server's certificate and host name; a server without TLS is
    refused."""
    return tls_files(
        "DB_SSL",
        setting(config, "DB_SSL_CA_FILE", str, default=""),
        setting(config, "DB_SSL_CERT_FILE", str, default=""),
        setting(config, "DB_SSL_KEY_FILE", str, default=""),
    )


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


MAX_PORT = 65535


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


@dataclass(frozen=True)
class MetricsAddress:
    """Where a process serves its own Prometheus metrics
    (order_pipeline.extensions.runtime_metrics)."""

    setting: str  # the setting it came from, for messages
    host: str
    port: int


def metrics_address(config: dict, key: str) -> MetricsAddress | None:
    """The `[host:]port` in setting `key`, or None when it is empty (off).
    One setting per service, so that services run in one process (`make
    run`) each get a port of their own."""
    text = setting(config, key, str).strip()
    if not text:
        return None
    address = bind_address(key, text)
    return MetricsAddress(setting=key, host=address.address, port=address.port)


@dataclass(frozen=True)
class Retention:
    """How long a service keeps its processed rows (`days`, 0: for ever) and
    how many it removes per transaction (`batch_size`)."""

    days: int
    batch_size: int

    @property
    def on(self) -> bool:
        return self.days > 0


# A batch's ids go over RPC to be checked by the other service, which takes
# at most order_contract.MAX_IDS_PER_CALL ids per call (1000).
MAX_RETENTION_BATCH = 1000


def retention_batch_size(config: dict) -> int:
    size = setting(config, "RETENTION_BATCH_SIZE", int, minimum=1)
    if size > MAX_RETENTION_BATCH:
        raise StartupError(f"RETENTION_BATCH_SIZE must not exceed {MAX_RETENTION_BATCH}")
    return size


def retention_interval_seconds(config: dict) -> float:
    return setting(config, "RETENTION_INTERVAL_SECONDS", float, minimum=1)

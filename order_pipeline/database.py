"""The database as the services and the commands reach it: engine options
that survive a restart, verified TLS with DB_SSL_*, causal reads on Galera,
a start-up check that names DB_URI, and creating the database (`make
migrate`).

Every engine the project makes takes its connection arguments from
`connect_args(tls)`: a connect timeout and, with DB_SSL_CA_FILE or
DB_SSL_CERT_FILE set, a TLS context that checks the server's certificate
and host name (and refuses a server without TLS). The services' engines
(`for_services`) also time out a connection that stops answering
(DB_IO_TIMEOUT_SECONDS); the commands' do not (a migration may be long).
Without them PyMySQL still encrypts when the server offers TLS, but checks
nothing, so it is no defence against a machine in the middle.
"""

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from order_pipeline.errors import StartupError
from order_pipeline.settings import db_io_timeout_seconds, db_tls
from order_pipeline.tls import TlsFiles, client_context, describe_tls_failure

CONNECT_TIMEOUT_SECONDS = 5

ENGINE_OPTIONS = {
    # A pooled connection can be dead after a database restart: ping it first.
    "pool_pre_ping": True,
    # MariaDB drops idle connections after wait_timeout (8 h by default).
    "pool_recycle": 3600,
    "pool_size": 10,
    "max_overflow": 20,
    # No ROLLBACK when a connection goes back to the pool: the session or
    # connection giving it back has already ended its transaction (commit,
    # or rollback on close), and that second ROLLBACK was a round trip per
    # checkout on every path.
    "pool_reset_on_return": None,
    # Fail fast when the server is down instead of hanging a worker.
    "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
}
# The server says so when TLS is asked of it and it has none.
NO_TLS_ON_THE_SERVER = 2026  # CR_SSL_CONNECTION_ERROR


def connect_args(tls: TlsFiles | None) -> dict:
    """PyMySQL's connection arguments: the connect timeout, and TLS with
    `tls` (DB_SSL_*, `db_tls(config)`)."""
    arguments = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if tls is not None:
        arguments["ssl"] = client_context(tls)
    return arguments


def for_services(engine_options: dict, config: dict) -> dict:
    """`engine_options` (create_engine's keyword arguments) with what every
    service's engine adds to their connection arguments: DB_SSL_*'s TLS
    context, and DB_IO_TIMEOUT_SECONDS as the read and write timeouts (a
    timed-out connection is discarded by the pool; the work is retried as
    after any lost connection)."""
    arguments = dict(engine_options.get("connect_args", {}))
    tls = db_tls(config)
    if tls is not None:
        arguments["ssl"] = client_context(tls)
    timeout = db_io_timeout_seconds(config)
    if timeout is not None:
        arguments["read_timeout"] = arguments["write_timeout"] = timeout
    return {**engine_options, "connect_args": arguments}


def describe_failure(db_uri, exc, tls: TlsFiles | None = None):
    """One line saying what is wrong and which setting to fix."""
    url = make_url(db_uri)
    where = f"cannot use the database at DB_URI={url.render_as_string(hide_password=True)}"
    reason = getattr(exc, "orig", exc)
    if tls is not None:
        if getattr(reason, "args", ())[:1] == (NO_TLS_ON_THE_SERVER,):
            return (
                f"{where}: DB_SSL_* ask for TLS and the server offers none ({reason}); "
                "enable TLS on the server, or unset DB_SSL_CA_FILE"
            )
        problem = describe_tls_failure(reason, tls, "DB_URI")
        if problem is not None:
            return f"{where} over TLS: {problem}"
    if "Unknown database" in str(reason):
        hint = "run `make migrate` (or `python -m order_pipeline.commands.migrate`)"
    else:
        hint = "check that the server runs, or set DB_URI"
    return f"{where} ({reason}); {hint}"


def read_causally_on_galera(dbapi_connection, _connection_record):
    """On a Galera node, make the connection's reads wait until the node has
    applied every write set the cluster committed before them
    (`wsrep_sync_wait = 1`: SELECT, SHOW and BEGIN). Galera applies other
    nodes' commits asynchronously: just after HAProxy moves the services to
    another node, a plain read there can miss an order committed through the
    old one a moment before, and the processor would dead-letter its event
    as OrderNotFound. One SHOW per new connection; nothing changes on a
    server without Galera."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if row is not None and str(row[1]).upper() == "ON":
            cursor.execute("SET SESSION wsrep_sync_wait = 1")


def check_connection(engine, tls: TlsFiles | None = None):
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StartupError(describe_failure(str(engine.url), exc, tls)) from None


def server_url(db_uri):
    """The same server without a database name (to create or drop one)."""
    # URL.set(database=None) means "unchanged"; replace the field instead.
    return make_url(db_uri)._replace(database=None)


def create_database_if_missing(db_uri, tls: TlsFiles | None = None):
    """Create DB_URI's database unless it exists; True if it was created."""
    url = make_url(db_uri)
    engine = create_engine(server_url(db_uri), connect_args=connect_args(tls))
    try:
        with engine.begin() as connection:
            # MariaDB counts one row for a database created, none (and a
            # note) for one that already existed.
            return (
                connection.execute(
                    text(
                        f"CREATE DATABASE IF NOT EXISTS `{url.database}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                ).rowcount
                == 1
            )
    except SQLAlchemyError as exc:
        raise StartupError(describe_failure(db_uri, exc, tls)) from None
    finally:
        engine.dispose()

"""Database access shared by the services that own tables.

`CheckedDatabase` is nameko-sqlalchemy's `Database` with five changes: the
engine survives a database restart (connections are pinged before use),
reads are causal on a Galera cluster (`read_causally_on_galera`), a
worker whose connection died with the database does not take the service
down when its session is closed, a database that cannot be reached at
start-up stops `nameko run` with a one-line error naming DB_URI instead of
failing on the first worker, and a service can prepare its tables at
start-up (`on_setup`).
"""

import logging

from nameko_sqlalchemy.database import Database, DatabaseWrapper
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from order_pipeline.errors import StartupError

log = logging.getLogger(__name__)

ENGINE_OPTIONS = {
    # A pooled connection can be dead after a database restart: ping it first.
    "pool_pre_ping": True,
    # MariaDB drops idle connections after wait_timeout (8 h by default).
    "pool_recycle": 3600,
    "pool_size": 10,
    "max_overflow": 20,
    # Fail fast when the server is down instead of hanging a worker.
    "connect_args": {"connect_timeout": 5},
}


def describe_failure(db_uri, exc):
    """One line saying what is wrong and which setting to fix."""
    url = make_url(db_uri)
    reason = getattr(exc, "orig", exc)
    if "Unknown database" in str(reason):
        hint = "run `make migrate` (or `python -m order_pipeline.migrations`)"
    else:
        hint = "check that the server runs, or set DB_URI"
    return f"cannot use the database at DB_URI={url.render_as_string(hide_password=True)} ({reason}); {hint}"


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


def check_connection(engine):
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StartupError(describe_failure(str(engine.url), exc)) from None


class CheckedDatabase(Database):
    """`db = CheckedDatabase(Base, on_setup=prepare)`: `prepare(db, config)`
    runs once the database answers, before any entrypoint starts, with the
    same `db` (get_session()) that workers get."""

    def __init__(self, declarative_base, on_setup=None, **kwargs):
        kwargs.setdefault("engine_options", dict(ENGINE_OPTIONS))
        super().__init__(declarative_base, **kwargs)
        self.on_setup = on_setup

    def setup(self):
        super().setup()
        event.listen(self.engine, "connect", read_causally_on_galera)
        check_connection(self.engine)
        if self.on_setup is not None:
            db = DatabaseWrapper(self.Session)
            try:
                self.on_setup(db, self.container.config)
            finally:
                db.close()

    def worker_teardown(self, worker_ctx):
        # Closing a session rolls back its open transaction; on a connection
        # the database dropped (a restart, an outage) that rollback raises,
        # and nameko kills the whole container for an error in a teardown.
        # The worker's own error, if any, has already been handled; the pool
        # discards the dead connection.
        try:
            super().worker_teardown(worker_ctx)
        except SQLAlchemyError as exc:
            log.warning("closing a worker's database session failed: %s", exc.__class__.__name__)


def server_url(db_uri):
    """The same server without a database name (to create or drop one)."""
    # URL.set(database=None) means "unchanged"; replace the field instead.
    return make_url(db_uri)._replace(database=None)


def create_database_if_missing(db_uri):
    """Create DB_URI's database unless it exists; True if it was created."""
    url = make_url(db_uri)
    engine = create_engine(server_url(db_uri), connect_args={"connect_timeout": 5})
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
        raise StartupError(describe_failure(db_uri, exc)) from None
    finally:
        engine.dispose()


def drop_database(db_uri):
    url = make_url(db_uri)
    engine = create_engine(server_url(db_uri))
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    finally:
        engine.dispose()

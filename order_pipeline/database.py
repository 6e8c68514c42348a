"""Database access shared by the services that own tables.

`CheckedDatabase` is nameko-sqlalchemy's `Database` with three changes: the
engine survives a database restart (connections are pinged before use), a
database that cannot be reached at start-up stops `nameko run` with a
one-line error naming DB_URI instead of failing on the first worker, and a
worker's sessions that cannot be closed cleanly (the database dropped the
connection) do not stop the service.
"""
import logging

from order_pipeline.errors import StartupError
from nameko_sqlalchemy import Database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

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
        hint = "run `make migrate` (or `python -m order_pipeline.migrate`)"
    else:
        hint = "check that the server runs, or set DB_URI"
    return "cannot use the database at DB_URI={} ({}); {}".format(
        url.render_as_string(hide_password=True), reason, hint)


def check_connection(engine):
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StartupError(describe_failure(str(engine.url), exc)) from None


class CheckedDatabase(Database):
    def __init__(self, declarative_base, **kwargs):
        kwargs.setdefault("engine_options", dict(ENGINE_OPTIONS))
        super().__init__(declarative_base, **kwargs)

    def setup(self):
        super().setup()
        check_connection(self.engine)

    def worker_teardown(self, worker_ctx):
        # Closing a session rolls back what it left open. On a connection the
        # database has dropped (a restart) that fails, and an exception in a
        # worker's teardown makes nameko kill the whole service. The
        # connection is discarded either way, so the failure is only logged.
        try:
            super().worker_teardown(worker_ctx)
        except SQLAlchemyError as exc:
            log.warning("%s: closing its database session failed: %s", worker_ctx, exc)


def server_url(db_uri):
    """The same server without a database name (to create or drop one)."""
    # URL.set(database=None) means "unchanged"; replace the field instead.
    return make_url(db_uri)._replace(database=None)


def create_database_if_missing(db_uri):
    url = make_url(db_uri)
    engine = create_engine(server_url(db_uri), connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "CREATE DATABASE IF NOT EXISTS `{}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci".format(
                    url.database)))
    except SQLAlchemyError as exc:
        raise StartupError(describe_failure(db_uri, exc)) from None
    finally:
        engine.dispose()


def drop_database(db_uri):
    url = make_url(db_uri)
    engine = create_engine(server_url(db_uri))
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS `{}`".format(url.database)))
    finally:
        engine.dispose()

"""`CheckedDatabase`: nameko-sqlalchemy's `Database` with six changes.

The engine survives a database restart (connections are pinged before use),
connects over verified TLS with DB_SSL_* (order_pipeline.database) and
drops a connection that stops answering (DB_IO_TIMEOUT_SECONDS),
reads are causal on a Galera cluster (`read_causally_on_galera`), a worker
whose connection died with the database does not take the service down when
its session is closed, a database that cannot be reached at start-up stops
`nameko run` with a one-line error naming DB_URI instead of failing on the
first worker (after STARTUP_WAIT_SECONDS of trying, order_pipeline.startup),
a DB_URI that is no MariaDB URL is a one-line error too, and a service can
prepare its tables at start-up (`on_setup`).
"""

import logging

from nameko_sqlalchemy.database import DB_URIS_KEY, Database, DatabaseWrapper
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from order_pipeline.database import (
    ENGINE_OPTIONS,
    check_connection,
    for_services,
    read_causally_on_galera,
)
from order_pipeline.settings import checked_db_uri, db_tls, startup_wait_seconds
from order_pipeline.startup import retry_until_up

log = logging.getLogger(__name__)


class CheckedDatabase(Database):
    """`db = CheckedDatabase(Base, on_setup=prepare)`: `prepare(db, config)`
    runs once the database answers, before any entrypoint starts, with the
    same `db` (get_session()) that workers get."""

    def __init__(self, declarative_base, on_setup=None, **kwargs):
        kwargs.setdefault("engine_options", dict(ENGINE_OPTIONS))
        super().__init__(declarative_base, **kwargs)
        self.on_setup = on_setup

    def setup(self):
        config = self.container.config
        # DB_SSL_* and DB_IO_TIMEOUT_SECONDS, for the engine super().setup() makes.
        self.engine_options = for_services(self.engine_options, config)
        checked_db_uri(
            config[DB_URIS_KEY][f"{self.container.service_name}:{self.declarative_base.__name__}"]
        )
        super().setup()
        event.listen(self.engine, "connect", read_causally_on_galera)
        retry_until_up(
            lambda: check_connection(self.engine, db_tls(config)),
            startup_wait_seconds(config),
            "the database",
        )
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

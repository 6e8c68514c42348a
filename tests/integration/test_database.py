"""CheckedDatabase against the real MariaDB: a worker whose connection the
database dropped does not take the service down."""

from sqlalchemy import text

from generator_service.models import Base
from harness.tables import sql
from order_pipeline.database import CheckedDatabase


class Container:
    """What the provider reads of nameko's ServiceContainer."""

    service_name = "order_generator"

    def __init__(self, db_uri):
        self.config = {"DB_URIS": {"order_generator:Base": db_uri}}


class Worker:
    """A worker context: the provider keys each worker's sessions by it."""


def test_a_worker_whose_connection_was_killed_is_torn_down_quietly(db_uri):
    container = Container(db_uri)  # the provider holds it weakly
    provider = CheckedDatabase(Base).bind(container, "db")
    provider.setup()
    worker = Worker()
    try:
        db = provider.get_dependency(worker)
        # A read in the worker's session leaves its transaction open...
        connection_id = db.session.execute(text("SELECT CONNECTION_ID()")).scalar()
        # ...when the database drops the connection (as a restart does).
        sql(db_uri, f"KILL {connection_id}")
        provider.worker_teardown(worker)  # nameko kills the container if this raises

        # The next worker gets a working connection.
        again = provider.get_dependency(worker)
        assert again.session.execute(text("SELECT 1")).scalar() == 1
        provider.worker_teardown(worker)
    finally:
        provider.stop()

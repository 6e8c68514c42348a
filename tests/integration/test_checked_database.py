"""The services' database dependency in a running service, against a real
MariaDB database (and RabbitMQ vhost) of the test's own."""

import eventlet
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from generator_service.models import Base
from harness.tables import sql
from order_pipeline.extensions.checked_database import CheckedDatabase
from order_pipeline.extensions.rpc import rpc


class Reader:
    name = "reader"
    db = CheckedDatabase(Base)
    db_uri = None  # set by the test

    @rpc
    def read_and_lose_the_connection(self):
        """Read in the worker's session, whose connection the database then
        drops (as on a restart) before the worker's teardown closes it."""
        connection_id = self.db.session.execute(text("SELECT CONNECTION_ID()")).scalar()
        sql(Reader.db_uri, f"KILL {connection_id}")
        return connection_id


def test_a_connection_the_database_dropped_does_not_stop_the_service(db_uri, amqp_uri):
    Reader.db_uri = db_uri
    config = {"AMQP_URI": amqp_uri, "QUEUE_TYPE": "classic", "DB_URIS": {"reader:Base": db_uri}}
    container = ServiceContainer(Reader, config)
    container.start()
    ended = eventlet.spawn(container.wait)  # returns (or raises) once the service is dead
    try:
        with ClusterRpcProxy(config, timeout=20) as cluster:
            first = cluster.reader.read_and_lose_the_connection()
            # Still serving, on a new connection.
            second = cluster.reader.read_and_lose_the_connection()
        assert second != first
        assert not ended.dead
    finally:
        with eventlet.Timeout(30, False):
            container.kill()

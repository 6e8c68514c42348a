"""The services' database sessions read causally on the Galera cluster, and
plainly on a server without Galera: a read right after the services move to
another node must see what was committed through the old one."""

from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from generator_service.models import Base
from harness.clusters import ClusterServers
from order_pipeline.extensions.checked_database import CheckedDatabase
from order_pipeline.extensions.rpc import rpc


class SessionReader:
    name = "session_reader"
    db = CheckedDatabase(Base)

    @rpc
    def sync_wait(self):
        return self.db.session.execute(text("SELECT @@wsrep_sync_wait")).scalar()


def sync_wait_in_a_worker(db_uri, amqp_uri, queue_type):
    config = {
        "AMQP_URI": amqp_uri,
        "QUEUE_TYPE": queue_type,
        "DB_URIS": {"session_reader:Base": db_uri},
    }
    container = ServiceContainer(SessionReader, config)
    container.start()
    try:
        with ClusterRpcProxy(config, timeout=30) as cluster:
            return cluster.session_reader.sync_wait()
    finally:
        container.stop()


def test_a_worker_reads_causally_through_the_galera_proxy(clusters):
    servers = ClusterServers(clusters)
    db_uri, amqp_uri = servers.create_database(), servers.create_vhost()
    try:
        assert sync_wait_in_a_worker(db_uri, amqp_uri, "quorum") == 1
    finally:
        servers.drop_database(db_uri)
        servers.drop_vhost(amqp_uri)


def test_a_worker_on_a_server_without_galera_is_left_alone(db_uri, amqp_uri):
    assert sync_wait_in_a_worker(db_uri, amqp_uri, "classic") == 0

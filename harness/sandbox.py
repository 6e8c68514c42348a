"""Throwaway MariaDB databases and RabbitMQ vhosts, and a sandbox that runs
the services in a pair of them.

Each database and vhost is named with a random suffix, created here and
dropped here; nothing touches a database or vhost it did not create.
"""

import os
import subprocess
import time
import uuid
from contextlib import contextmanager

from kombu import Connection
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.broker import local_rabbitmqctl
from harness.processes import Pipeline, wait_until
from order_pipeline.broker import Broker
from order_pipeline.commands.migrate import migrate
from order_pipeline.database import server_url

# The server to create test databases on (root may create and drop).
DB_SERVER_URI = os.environ.get("TEST_DB_SERVER_URI", "mysql+pymysql://root@127.0.0.1:3306/")
AMQP_SERVER_URI = os.environ.get("TEST_AMQP_SERVER_URI", "amqp://guest:guest@127.0.0.1:5672/")
AMQP_USER = Connection(AMQP_SERVER_URI).userid
PREFIX = "orders_test_"
STARTUP_TIMEOUT_SECONDS = 60


def unique_name(kind=""):
    return f"{PREFIX}{kind}{uuid.uuid4().hex[:10]}"


def create_test_database():
    """A new, migrated database; returns its URI."""
    db_uri = make_url(DB_SERVER_URI).set(database=unique_name())
    db_uri = db_uri.render_as_string(hide_password=False)
    migrate(db_uri)
    return db_uri


def drop_database(db_uri):
    url = make_url(db_uri)
    engine = create_engine(server_url(db_uri))
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    finally:
        engine.dispose()


def drop_test_database(db_uri):
    assert make_url(db_uri).database.startswith(PREFIX), db_uri
    drop_database(db_uri)


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, stdout=subprocess.DEVNULL, timeout=60)


def create_test_vhost():
    """A new vhost the configured user may use; returns its AMQP URI."""
    vhost = unique_name("vhost_")
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*")
    return AMQP_SERVER_URI.rstrip("/") + "/" + vhost


def drop_test_vhost(amqp_uri):
    vhost = amqp_uri.rsplit("/", 1)[1]
    assert vhost.startswith(PREFIX), amqp_uri
    rabbitmqctl("delete_vhost", vhost)


class LocalServers:
    """The machine's RabbitMQ and MariaDB (harness.clusters.ClusterServers
    is the same for the clusters): where a sandbox makes its database and
    vhost, the settings the services need there, and `rabbitmqctl` on that
    broker."""

    settings = {}
    create_database = staticmethod(create_test_database)
    drop_database = staticmethod(drop_test_database)
    create_vhost = staticmethod(create_test_vhost)
    drop_vhost = staticmethod(drop_test_vhost)
    rabbitmqctl = staticmethod(local_rabbitmqctl)


@contextmanager
def sandbox(log_dir, servers=LocalServers, **settings):
    """Yield a Pipeline (no services started yet) on a new database and
    vhost on `servers`, both removed afterwards however the block ends.
    The pipeline's `servers` attribute is `servers`."""
    os.makedirs(log_dir, exist_ok=True)
    db_uri = servers.create_database()
    try:
        amqp_uri = servers.create_vhost()
        try:
            pipeline = Pipeline(db_uri, amqp_uri, log_dir, **servers.settings, **settings)
            pipeline.servers = servers
            try:
                yield pipeline
            finally:
                pipeline.stop()
        finally:
            servers.drop_vhost(amqp_uri)
    finally:
        servers.drop_database(db_uri)


def rpc_proxy(amqp_uri, timeout=10):
    """A standalone RPC proxy into a vhost (use as a context manager);
    `amqp_uri` may be a Broker (over TLS: `Pipeline.broker`)."""
    target = amqp_uri if isinstance(amqp_uri, Broker) else Broker(amqp_uri)
    return ClusterRpcProxy(target.nameko_keys(), timeout=timeout)


def wait_for_rpc(amqp_uri, service, method, processes=(), args=()):
    """Wait until `service.method(*args)` answers over RPC; fail early if one
    of `processes` has exited.

    A service restarted on a vhost where its queue already exists gets the
    call from that queue only once it has started consuming, which on a
    loaded machine can take longer than one call's timeout: that is asked
    again, like an unknown service, until STARTUP_TIMEOUT_SECONDS."""

    def answers():
        check_running(processes)
        try:
            with rpc_proxy(amqp_uri, timeout=5) as proxy:
                getattr(getattr(proxy, service), method)(*args)
            return True
        except (UnknownService, RpcTimeout):
            time.sleep(0.2)
            return False

    wait_until(answers, STARTUP_TIMEOUT_SECONDS, message=f"{service}.{method}")


def check_running(processes):
    """Fail, naming the log to read, if one of the processes has exited."""
    for process in processes:
        if not process.running:
            raise RuntimeError(f"{process.modules} exited; see {process.log_path}")

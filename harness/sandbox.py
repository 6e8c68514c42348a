"""Throwaway MariaDB databases and RabbitMQ vhosts, and a sandbox that runs
the services in a pair of them.

Each database and vhost is named with a random suffix, created here and
dropped here; nothing touches a database or vhost it did not create.
"""

import atexit
import json
import os
import subprocess
import threading
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


def database_uri(name):
    return make_url(DB_SERVER_URI).set(database=name).render_as_string(hide_password=False)


class SchemaTemplate:
    """A database migrated once per process, copied into each new test
    database: running every migration (Alembic, 17 revisions of DDL) took
    about 2 s a database here, a copy about 0.3 s. The copy takes each
    table's own SHOW CREATE TABLE (foreign keys and table options come
    along) and the rows the migrations seeded, the Alembic versions among
    them. tests/integration/test_sandbox.py compares a copy with a
    database migrated from scratch."""

    def __init__(self):
        self.lock = threading.Lock()
        self.name = None
        self.tables = None  # [(table, CREATE TABLE statement)]

    def _prepare(self):
        name = unique_name("template_")
        migrate(database_uri(name))
        self.name = name  # dropped at exit from here on
        atexit.register(drop_database, database_uri(name))
        engine = create_engine(database_uri(name))
        try:
            with engine.connect() as connection:
                tables = connection.execute(text("SHOW TABLES")).scalars().all()
                self.tables = [
                    (table, connection.execute(text(f"SHOW CREATE TABLE `{table}`")).one()[1])
                    for table in tables
                ]
        finally:
            engine.dispose()

    def copy(self):
        """A new database with the template's tables and rows; its URI."""
        with self.lock:
            if self.tables is None:
                self._prepare()
        name = unique_name()
        engine = create_engine(server_url(DB_SERVER_URI))
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
                connection.execute(text(f"USE `{name}`"))
                # Tables in any order, whatever references what.
                connection.execute(text("SET SESSION foreign_key_checks = 0"))
                for table, create in self.tables:
                    connection.exec_driver_sql(create)  # no bind parameters read into it
                    connection.execute(
                        text(f"INSERT INTO `{table}` SELECT * FROM `{self.name}`.`{table}`")
                    )
        finally:
            engine.dispose()
        return database_uri(name)


TEMPLATE = SchemaTemplate()


def create_test_database():
    """A new, migrated database; returns its URI."""
    return TEMPLATE.copy()


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


def rabbitmqctl(*args, stdin=None):
    subprocess.run(
        ["rabbitmqctl", "-q", *args],
        check=True,
        input=stdin,
        text=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )


VHOST_BATCH = 8


class Vhosts:
    """The machine's broker's test vhosts, made and deleted in batches.

    Each rabbitmqctl call boots an Erlang VM: over a second here, most of
    it CPU. A vhost took three (add, permissions, delete), which made them
    a large share of a test run on two cores. Here one call makes
    VHOST_BATCH vhosts with AMQP_USER's permissions (`import_definitions`),
    and one deletes up to VHOST_BATCH dropped ones (`eval` of RabbitMQ's
    internal `rabbit_vhost:delete/2`, the function `delete_vhost` calls;
    tests/integration/test_sandbox.py fails if it changes). What is left,
    dropped or never handed out, is deleted when the process exits."""

    def __init__(self, batch=VHOST_BATCH):
        self.batch = batch
        self.lock = threading.Lock()
        self.ready = []
        self.dropped = []
        atexit.register(self.close)

    def take(self):
        with self.lock:
            if not self.ready:
                names = [unique_name("vhost_") for _ in range(self.batch)]
                make_vhosts(names)
                self.ready.extend(names)
            return self.ready.pop()

    def drop(self, vhost):
        with self.lock:
            self.dropped.append(vhost)
            if len(self.dropped) < self.batch:
                return
            batch, self.dropped = self.dropped, []
        delete_vhosts(batch)

    def close(self):
        with self.lock:
            left, self.ready, self.dropped = self.ready + self.dropped, [], []
        if left:
            delete_vhosts(left)


def make_vhosts(names):
    definitions = {
        "vhosts": [{"name": name} for name in names],
        "permissions": [
            {"user": AMQP_USER, "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}
            for name in names
        ],
    }
    rabbitmqctl("import_definitions", stdin=json.dumps(definitions))


def delete_vhosts(names):
    assert all(name.startswith(PREFIX) for name in names), names
    quoted = ", ".join(f'<<"{name}">>' for name in names)
    rabbitmqctl("eval", f'[rabbit_vhost:delete(V, <<"orders-tests">>) || V <- [{quoted}]].')


VHOSTS = Vhosts()


def create_test_vhost():
    """A new vhost the configured user may use; returns its AMQP URI."""
    return AMQP_SERVER_URI.rstrip("/") + "/" + VHOSTS.take()


def drop_test_vhost(amqp_uri):
    """Delete the vhost (with the next batch, or when the process exits)."""
    vhost = amqp_uri.rsplit("/", 1)[1]
    assert vhost.startswith(PREFIX), amqp_uri
    VHOSTS.drop(vhost)


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

"""Each service on a broker and a database user of its own, for a test run.

`IdentitySandbox` runs the provision command (order_pipeline.commands.provision)
as an operator would: against a private RabbitMQ node's management API (the
machine's node has no management plugin, and must keep it that way) and the
machine's MariaDB as root, into a new vhost and a new database, with user
names that start with a prefix unique to the run and random passwords. It
gives each identity's AMQP_URI and DB_URI, and removes every user, the
vhost and the database afterwards.
"""

import atexit
import os
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit

import amqp
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from harness.private_rabbit import PrivateRabbit
from harness.sandbox import DB_SERVER_URI, drop_test_database, unique_name
from order_pipeline.broker_admin import BrokerAdmin
from order_pipeline.commands.provision import Inputs, password_variable, provision
from order_pipeline.database import server_url
from order_pipeline.database_admin import drop_user
from order_pipeline.errors import StartupError
from order_pipeline.identities import IDENTITIES

MANAGEMENT_TIMEOUT_SECONDS = 60


def wait_for_management(url, timeout=MANAGEMENT_TIMEOUT_SECONDS):
    """The management API answers a little after the AMQP listener."""
    admin = BrokerAdmin(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.overview()
        except StartupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def rabbit_with_management():
    """A private RabbitMQ node with its management API, stopped and deleted
    afterwards (at exit too, if the run is interrupted)."""
    base_dir = tempfile.mkdtemp(prefix="identities_rabbit_")
    rabbit = PrivateRabbit(base_dir, management=True)

    def tear_down():
        rabbit.stop()
        shutil.rmtree(base_dir, ignore_errors=True)

    atexit.register(tear_down)
    try:
        rabbit.start()
        wait_for_management(rabbit.management_url)
        yield rabbit
    finally:
        tear_down()
        atexit.unregister(tear_down)


@contextmanager
def identity_sandbox(rabbit):
    """An IdentitySandbox, provisioned (and migrated), removed afterwards."""
    sandbox = IdentitySandbox(rabbit)
    try:
        sandbox.provision()
        yield sandbox
    finally:
        sandbox.remove()


class IdentitySandbox:
    """Users for every identity in a new vhost of `rabbit` (a PrivateRabbit
    started with management=True) and a new database on the machine's
    MariaDB. `provision()` creates them (and migrates, as order_migrate);
    `remove()` deletes them all."""

    def __init__(self, rabbit):
        self.rabbit = rabbit
        self.admin = BrokerAdmin(rabbit.management_url)
        self.prefix = unique_name("id_") + "_"
        self.vhost = unique_name("vhost_")
        self.database = unique_name()
        self.passwords = {
            (identity.name, system): secrets.token_urlsafe(18)
            for identity in IDENTITIES
            for system, grant in (("AMQP", identity.broker), ("DB", identity.database))
            if grant is not None
        }
        self.db_admin_uri = (
            make_url(DB_SERVER_URI)
            .set(database=self.database)
            .render_as_string(hide_password=False)
        )
        self._vhost_made = False

    def user(self, name):
        return self.prefix + name

    def inputs(self):
        return Inputs(
            rabbitmq_admin_url=self.rabbit.management_url,
            vhost=self.vhost,
            db_admin_uri=self.db_admin_uri,
            passwords=self.passwords,
            prefix=self.prefix,
        )

    def environment(self):
        """The provision command's environment for this sandbox."""
        env = {
            "RABBITMQ_ADMIN_URL": self.rabbit.management_url,
            "RABBITMQ_VHOST": self.vhost,
            "DB_ADMIN_URI": self.db_admin_uri,
        }
        for (name, system), password in self.passwords.items():
            env[password_variable(name, system)] = password
        return env

    def make_vhost(self):
        """The vhost, with every permission for the node's administrator
        (guest), which the tests use to look at queues and send events."""
        self.admin.put_vhost(self.vhost)
        self.admin.set_permissions(
            self.vhost, "guest", {"configure": ".*", "write": ".*", "read": ".*"}
        )
        self._vhost_made = True

    def provision(self, migrate=True):
        """Run the provisioning; returns the lines it printed."""
        if not self._vhost_made:
            self.make_vhost()
        lines = []
        provision(self.inputs(), say=lines.append, run_migrations=migrate)
        return lines

    def amqp_uri(self, name, password=None):
        password = self.passwords[name, "AMQP"] if password is None else password
        return (
            f"amqp://{quote(self.user(name), safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.rabbit.port}/{quote(self.vhost, safe='')}"
        )

    def admin_amqp_uri(self):
        """The node's administrator in this vhost (for looking and setting up)."""
        return self.rabbit.amqp_uri.rstrip("/") + "/" + quote(self.vhost, safe="")

    def db_uri(self, name, password=None):
        password = self.passwords[name, "DB"] if password is None else password
        return (
            make_url(self.db_admin_uri)
            .set(username=self.user(name), password=password)
            .render_as_string(hide_password=False)
        )

    def service_environment(self, service):
        """AMQP_URI and DB_URI for a service's process, as a deployment
        gives them: its own users; the gateway, no usable database."""
        if service == "gateway":
            return {
                "AMQP_URI": self.amqp_uri("order_gateway"),
                # Nothing listens there: the gateway must never need it.
                "DB_URI": "mysql+pymysql://nobody@127.0.0.1:9/none",
            }
        name = {"generator_service": "order_generator", "processor_service": "order_processor"}[
            service
        ]
        return {"AMQP_URI": self.amqp_uri(name), "DB_URI": self.db_uri(name)}

    def remove(self):
        for identity in IDENTITIES:
            self.admin.delete_user(self.user(identity.name))
        if self._vhost_made:
            self.admin.delete_vhost(self.vhost)
        engine = create_engine(server_url(self.db_admin_uri))
        try:
            with engine.begin() as connection:
                for identity in IDENTITIES:
                    drop_user(connection, self.user(identity.name))
        finally:
            engine.dispose()
        drop_test_database(self.db_admin_uri)


@contextmanager
def amqp_channel(amqp_uri):
    """A channel as the user of `amqp_uri`, with the plain amqp client:
    nothing declared or retried behind the caller's back."""
    parts = urlsplit(amqp_uri)
    connection = amqp.Connection(
        f"{parts.hostname}:{parts.port}",
        userid=unquote(parts.username),
        password=unquote(parts.password),
        virtual_host=unquote(parts.path[1:]) or "/",
    )
    connection.connect()
    try:
        yield connection.channel()
    finally:
        try:
            connection.close()
        except Exception:  # the broker has closed it (a refusal)
            pass


def command_environment(sandbox):
    """os.environ with the sandbox's provisioning variables, for running
    the command as a process."""
    return {**os.environ, **sandbox.environment()}

"""A service started before its broker and database (containers start in
no set order: compose without healthchecks, Kubernetes) waits for them for
up to STARTUP_WAIT_SECONDS and then runs, with nothing restarted.

The broker and the database are a RabbitMQ node and a MariaDB server of
the test's own, started only once the service has said it is waiting for
them. The database user the service logs in as is created last, after the
migrations, as the provision step does: until then the service is refused,
and waits too.
"""

import os
import shutil
import tempfile

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.private_rabbit import PrivateRabbit
from harness.processes import wait_until
from order_pipeline.commands.migrate import migrate
from tests.faults.private_mariadb import PrivateMariaDB

SERVICE_USER = "startup_generator"
SERVICE_PASSWORD = "startup-generator-password"


def orders_in(db_uri):
    engine = create_engine(db_uri)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT COUNT(*) FROM orders")).scalar()
    finally:
        engine.dispose()


def test_a_service_started_before_its_broker_and_database_runs_once_they_are_up(
    make_pipeline,
):
    base_dir = tempfile.mkdtemp(prefix="startup_wait_")
    servers = []
    pipeline = None
    try:
        rabbit = PrivateRabbit(_subdir(base_dir, "rabbit"))
        mariadb = PrivateMariaDB(_subdir(base_dir, "mariadb"))
        admin_uri = make_url(mariadb.server_uri).set(database="orders_startup")
        service_uri = admin_uri.set(username=SERVICE_USER, password=SERVICE_PASSWORD)
        pipeline = make_pipeline(
            service_uri.render_as_string(hide_password=False),
            rabbit.amqp_uri,
            STARTUP_WAIT_SECONDS=300,
        )
        generator = pipeline.start_service("generator_service")
        generator.wait_for_output("waiting for the broker", timeout=60)
        generator.wait_for_output("waiting for the database", timeout=60)

        servers.append(mariadb.start())
        migrate(admin_uri.render_as_string(hide_password=False))
        engine = create_engine(admin_uri)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(f"CREATE USER '{SERVICE_USER}'@'%' IDENTIFIED BY '{SERVICE_PASSWORD}'")
                )
                connection.execute(text(f"GRANT ALL ON orders_startup.* TO '{SERVICE_USER}'@'%'"))
        finally:
            engine.dispose()
        servers.append(rabbit.start())

        admin = admin_uri.render_as_string(hide_password=False)
        wait_until(lambda: orders_in(admin) > 0, 120, message="an order generated")
        assert generator.running, generator.output()
        assert "Error:" not in generator.output()
    finally:
        if pipeline is not None:
            pipeline.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


def _subdir(base_dir, name):
    path = os.path.join(base_dir, name)
    os.makedirs(path)
    return path

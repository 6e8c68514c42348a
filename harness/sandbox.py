"""Throwaway MariaDB databases and RabbitMQ vhosts.

Each is named with a random suffix, created here and dropped here; nothing
touches a database or vhost it did not create.
"""
import os
import subprocess
import uuid

from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from order_pipeline.database import drop_database
from order_pipeline.migrate import migrate

# The server to create test databases on (root may create and drop).
DB_SERVER_URI = os.environ.get("TEST_DB_SERVER_URI", "mysql+pymysql://root@127.0.0.1:3306/")
AMQP_SERVER_URI = os.environ.get("TEST_AMQP_SERVER_URI", "amqp://guest:guest@127.0.0.1:5672/")
AMQP_USER = Connection(AMQP_SERVER_URI).userid
PREFIX = "orders_test_"


def unique_name(kind=""):
    return "{}{}{}".format(PREFIX, kind, uuid.uuid4().hex[:10])


def create_test_database():
    """A new, migrated database; returns its URI."""
    db_uri = str(make_url(DB_SERVER_URI).set(database=unique_name()))
    migrate(db_uri)
    return db_uri


def drop_test_database(db_uri):
    assert make_url(db_uri).database.startswith(PREFIX), db_uri
    drop_database(db_uri)


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


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


def sql(db_uri, statement, **params):
    """Run one statement on its own connection and return all rows."""
    engine = create_engine(db_uri)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return result.all() if result.returns_rows else result.rowcount
    finally:
        engine.dispose()

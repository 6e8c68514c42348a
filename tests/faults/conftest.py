"""Fixtures for the fault suite.

Scenarios that stop the broker or the database run against a RabbitMQ node
and a MariaDB server of the suite's own (started once per session, stopped
and deleted at the end whatever happens), because the machine's servers
serve other test runs. The other scenarios use the shared servers through
the usual throwaway database and vhost. Each scenario adds a row to the
figures table printed at the end of the run.
"""

import atexit
import shutil
import tempfile

import pytest

from harness.private_rabbit import PrivateRabbit
from harness.processes import Pipeline
from tests.faults import figures
from tests.faults.ledger import Ledger
from tests.faults.private_mariadb import PrivateMariaDB


def _private_server(server_class, prefix):
    base_dir = tempfile.mkdtemp(prefix=prefix)
    server = None

    def tear_down():
        if server is not None:
            server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)

    # Also on an interrupted run that skips fixture teardown.
    atexit.register(tear_down)
    try:
        server = server_class(base_dir)
        server.start()
        yield server
    finally:
        tear_down()
        atexit.unregister(tear_down)


@pytest.fixture(scope="session")
def private_rabbit():
    """A RabbitMQ node of our own (guest/guest, vhost "/") to stop at will."""
    yield from _private_server(PrivateRabbit, "faults_rabbit_")


@pytest.fixture(scope="session")
def private_mariadb():
    """A MariaDB server of our own (root, no password) to stop at will."""
    yield from _private_server(PrivateMariaDB, "faults_mariadb_")


@pytest.fixture
def make_pipeline(tmp_path):
    """Factory for a Pipeline on any database and broker; every process it
    started is stopped after the test (Pipeline.stop)."""
    pipelines = []

    def make(db_uri, amqp_uri, **settings):
        pipelines.append(Pipeline(db_uri, amqp_uri, str(tmp_path), **settings))
        return pipelines[-1]

    yield make
    for pipeline in pipelines:
        pipeline.stop()


@pytest.fixture
def make_ledger():
    ledgers = []

    def make(db_uri):
        ledgers.append(Ledger(db_uri))
        return ledgers[-1]

    yield make
    for ledger in ledgers:
        ledger.close()


def pytest_terminal_summary(terminalreporter):
    if figures.RECORDED:
        terminalreporter.write_sep("=", "fault scenarios: orders committed and processed")
        terminalreporter.write_line(figures.format_table(figures.RECORDED))
    if figures.RECORDED_ATTACKS:
        terminalreporter.write_sep("=", "hostile load: a well-behaved client's view of the gateway")
        terminalreporter.write_line(
            figures.format_table(figures.RECORDED_ATTACKS, figures.ATTACK_COLUMNS)
        )

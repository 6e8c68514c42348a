"""Shared fixtures.

Unit tests (tests/unit) need nothing running. Everything else talks to the
real RabbitMQ and MariaDB, but only inside a database and a vhost that the
fixtures create for the test run and remove afterwards.
"""

import os

# trio (which selenium needs, for the browser test) registers a Hypothesis
# plugin that imports trio, and trio cannot be imported once eventlet has
# patched the socket module. No test uses Hypothesis plugins.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

import eventlet  # noqa: E402

# nameko is built on eventlet; plain pytest does not patch the standard
# library (`nameko test` would), so do it before anything else is imported.
eventlet.monkey_patch()  # noqa: E402

import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from harness import sandbox as infra  # noqa: E402
from harness.processes import Pipeline  # noqa: E402

TESTS = Path(__file__).resolve().parent
# The suites: folders under tests/, each also a marker (see pyproject.toml).
SUITES = {"unit", "integration", "e2e", "faults", "browser", "cluster", "compose", "partitions"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    """Mark every test with its suite, from its folder: tests/unit -> unit,
    tests/integration -> integration, tests/e2e -> e2e, tests/faults -> faults,
    tests/browser -> browser, tests/cluster -> cluster, tests/compose -> compose,
    tests/partitions -> partitions."""
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # a test file outside tests/
            continue
        if folder in SUITES:
            item.add_marker(folder)


@pytest.fixture(scope="module", autouse=True)
def stop_leftover_services():
    """After each module, stop in-process services its tests left running
    (a failed test skips its own clean-up), and say so."""
    yield
    services = sys.modules.get("tests.support.services")
    if services is None:  # the module never ran services in this process
        return
    left = services.stop_leftovers()
    if left:
        warnings.warn(f"stopped services a test left running: {sorted(left)}", stacklevel=1)


@pytest.fixture(scope="session")
def make_database():
    """Factory: a new migrated database per call, all dropped at the end."""
    created = []

    def make():
        created.append(infra.create_test_database())
        return created[-1]

    yield make
    for db_uri in created:
        infra.drop_test_database(db_uri)


@pytest.fixture(scope="session")
def make_vhost():
    """Factory: a new RabbitMQ vhost per call, all deleted at the end."""
    created = []

    def make():
        created.append(infra.create_test_vhost())
        return created[-1]

    yield make
    for amqp_uri in created:
        infra.drop_test_vhost(amqp_uri)


@pytest.fixture
def db_uri(make_database):
    return make_database()


@pytest.fixture
def amqp_uri(make_vhost):
    return make_vhost()


@pytest.fixture
def pipeline(db_uri, amqp_uri, tmp_path):
    """Factory for a Pipeline of real processes, stopped after the test."""
    pipelines = []

    def make(**settings):
        pipelines.append(Pipeline(db_uri, amqp_uri, str(tmp_path), **settings))
        return pipelines[-1]

    yield make
    for running in pipelines:
        running.stop()

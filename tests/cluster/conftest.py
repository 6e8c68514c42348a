"""Fixtures for the cluster suite.

One 3-node RabbitMQ cluster and one 3-node Galera cluster behind HAProxy
(harness.clusters) serve the whole session: starting them takes most of a
minute. Each scenario runs the services in a database and vhost of its own,
and leaves every node running and Synced for the next one, whatever it did
to them.
"""

import pytest

from harness.clusters import running_clusters
from tests.cluster import figures
from tests.cluster.system import ClusterSystem


@pytest.fixture(scope="session")
def clusters():
    with running_clusters() as started:
        yield started


@pytest.fixture
def system(clusters, tmp_path):
    """A ClusterSystem, started; stopped and removed after the test, and
    every node it stopped or froze running again."""
    cluster_system = ClusterSystem(clusters, str(tmp_path))
    try:
        yield cluster_system.start()
    finally:
        try:
            restore(clusters)
        finally:
            cluster_system.close()


def restore(clusters):
    nodes = [*clusters.rabbit.nodes, *clusters.galera.nodes]
    for node in nodes:
        if node.running:
            node.thaw()
        else:
            node.launch()
    for node in nodes:
        node.wait_answering(180)


def pytest_terminal_summary(terminalreporter):
    if figures.RECORDED:
        terminalreporter.write_sep("=", "cluster scenarios: orders committed and processed")
        terminalreporter.write_line(figures.table())

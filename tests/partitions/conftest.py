"""Fixtures for the partition suite (root only: network namespaces and
nftables).

One set of clusters on a private network (harness.partition_clusters)
serves the session; each run has a database, a vhost and services of its
own, and leaves every link healed and every node running for the next.
"""

import pytest

from harness.partition_clusters import running_partition_clusters
from tests.partitions import results
from tests.partitions.system import PartitionSystem


@pytest.fixture(scope="session")
def partition_clusters():
    with running_partition_clusters() as started:
        yield started


@pytest.fixture
def system(partition_clusters, tmp_path):
    partition_system = PartitionSystem(partition_clusters, str(tmp_path))
    try:
        yield partition_system.start()
    finally:
        try:
            restore(partition_clusters)
        finally:
            partition_system.close()


def restore(clusters):
    clusters.network.heal()
    nodes = [*clusters.rabbit.nodes, *clusters.galera.nodes]
    for node in nodes:
        if node.running:
            node.thaw()
        else:
            node.launch()
    for node in nodes:
        node.wait_answering(180)


def pytest_terminal_summary(terminalreporter):
    if results.RECORDED:
        terminalreporter.write_sep("=", "partition nemeses: verdicts")
        terminalreporter.write_line(results.table(results.RECORDED))

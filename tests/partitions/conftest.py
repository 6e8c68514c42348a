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


# How long a node may take to answer again after a run before it is
# restarted, and then how long its restart may take.
ANSWER_SECONDS = 90
RESTART_SECONDS = 180


def restore(clusters):
    """Every link healed and every node running and answering, for the next
    run. A node still not answering ANSWER_SECONDS after the heal (a RabbitMQ
    node that paused again as Erlang's partition prevention disconnected it
    after the heal, seen once) is restarted, as an operator would."""
    clusters.network.heal()
    nodes = [*clusters.rabbit.nodes, *clusters.galera.nodes]
    for node in nodes:
        if node.running:
            node.thaw()
        else:
            node.launch()
    for node in nodes:
        try:
            node.wait_answering(ANSWER_SECONDS)
        except RuntimeError:  # wait_answering stopped it
            print(f"{node.name} in {node.base_dir} did not answer after the run: restarted")
            node.launch().wait_answering(RESTART_SECONDS)


def pytest_terminal_summary(terminalreporter):
    if results.RECORDED:
        terminalreporter.write_sep("=", "partition nemeses: verdicts")
        terminalreporter.write_line(results.table(results.RECORDED))

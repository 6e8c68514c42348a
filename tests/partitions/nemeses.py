"""The seven nemeses (issue 18). Each takes a running PartitionSystem and the
seconds its fault lasts, injects the fault while the load runs, and lifts
it: the links healed, the nodes thawed or restarted. It returns the
failover seconds where it measures them (None elsewhere).

Namespaces (harness.partition_clusters): rabbit1-3, galera1-3, and the
services' gen (generator), proc (both processors) and gw (gateway); HAProxy
and the test's clients are in the root namespace, which the services reach
over the bridge.
"""

import signal
import time

import eventlet

RABBITS = ["rabbit1", "rabbit2", "rabbit3"]
GALERAS = ["galera1", "galera2", "galera3"]
# SIGKILL of the second Galera node this long after the first.
KILL_GAP_SECONDS = 0.5


def hold_until(deadline):
    eventlet.sleep(max(0.0, deadline - time.monotonic()))


def isolate_minority(system, seconds):
    """The node leading the processor's event queue cut off from the other
    two RabbitMQ nodes, and the Galera node the services write through from
    the other two, every client still reaching both. Failover: from the cut
    until orders committed after it are processed."""
    leader = system.event_queue_leader().namespace_name
    writer = system.galera_writer().namespace_name
    system.note(f"isolating {leader} and {writer}")
    deadline = time.monotonic() + seconds
    fault = system.fault_started()
    network = system.network
    network.cut_between([leader], [name for name in RABBITS if name != leader])
    network.cut_between([writer], [name for name in GALERAS if name != writer])
    failover = system.wait_failover(fault)
    hold_until(deadline)
    network.heal()
    return failover


def split_halves(system, seconds):
    """rabbit1, galera1 and the generator on one side; the other nodes, the
    processors and the gateway on the other. (HAProxy, in the root
    namespace, still reaches every Galera node, so the generator's writes
    go to whichever is in the primary component.)"""
    small = ["rabbit1", "galera1", "gen"]
    large = ["rabbit2", "rabbit3", "galera2", "galera3", "proc", "gw"]
    system.network.cut_between(small, large)
    eventlet.sleep(seconds)
    system.network.heal()


def majority_ring(system, seconds):
    """Each node sees a majority, not the same one: with three nodes, node 1
    and node 3 no longer see each other and node 2 sees both (RabbitMQ and
    Galera alike)."""
    system.network.cut_between(["rabbit1"], ["rabbit3"])
    system.network.cut_between(["galera1"], ["galera3"])
    eventlet.sleep(seconds)
    system.network.heal()


def generator_off_the_broker(system, seconds):
    """The generator's namespace cut off from every RabbitMQ node; the
    processors, the gateway and the database untouched."""
    system.network.cut_between(["gen"], RABBITS)
    eventlet.sleep(seconds)
    system.network.heal()


def processors_off_the_database(system, seconds):
    """The processors' namespace cut off from HAProxy (the root namespace),
    their only way to the database; the broker untouched."""
    system.network.cut_between(["proc"], ["root"])
    eventlet.sleep(seconds)
    system.network.heal()


def kill_two_galera_nodes(system, seconds):
    """The writer and the next Galera node SIGKILLed KILL_GAP_SECONDS apart
    (no clean shutdown: what a crash leaves), restarted after `seconds`
    (at most half of it: the rejoin takes the rest)."""
    nodes = system.clusters.galera.nodes
    writer = system.galera_writer()
    other = nodes[(nodes.index(writer) + 1) % len(nodes)]
    system.note(f"killing {writer.node_name} and {other.node_name}")
    for node in (writer, other):
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(30)
        node.process = None
        eventlet.sleep(KILL_GAP_SECONDS)
    eventlet.sleep(seconds / 2)
    for node in (writer, other):
        node.launch()


def pause_nodes(system, seconds):
    """The RabbitMQ node leading the event queue and the Galera writer
    SIGSTOPped for `seconds` (longer than RabbitMQ's net tick time, 10 s,
    and Galera's suspect timeout, 5 s), then continued.

    The continued RabbitMQ node never saw the others go (it was stopped),
    so pause_minority does not pause it, while they saw it go: the cluster
    can stay split (Mnesia's `running_partitioned_network`) until the node
    is restarted; PartitionSystem.wait_whole does what an operator would."""
    leader, writer = system.event_queue_leader(), system.galera_writer()
    leader.freeze()
    writer.freeze()
    try:
        eventlet.sleep(seconds)
    finally:
        leader.thaw()
        writer.thaw()


NEMESES = {
    "minority-isolated": isolate_minority,
    "halves": split_halves,
    "majority-ring": majority_ring,
    "generator-off-broker": generator_off_the_broker,
    "processors-off-database": processors_off_the_database,
    "two-galera-killed": kill_two_galera_nodes,
    "nodes-paused": pause_nodes,
}

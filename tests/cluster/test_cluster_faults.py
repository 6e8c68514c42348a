"""Nodes of the RabbitMQ and Galera clusters stopped, frozen and restarted
while orders flow; each scenario ends with generation stopped, the backlog
drained and the fault suite's audit: 0 lost, 0 duplicated, /metrics equal
to SQL, no dead letters."""

import signal

import eventlet

from harness.processes import wait_until
from tests.cluster.system import FAILOVER_SECONDS

FREEZE_SECONDS = 15


def test_rabbitmq_node_leading_the_event_queue_stopped_then_started(system):
    leader = system.event_queue_leader()
    fault = system.fault_started()
    leader.stop()
    # The other two nodes elect a new leader; the services, connected to the
    # stopped node or not, go on through the others.
    failover = system.wait_failover(fault)
    assert system.event_queue_leader() is not leader
    leader.start(timeout=180)
    fault_end = system.ledger.fault_ended()
    system.finish("RabbitMQ queue leader stopped", fault_end, failover)


def test_galera_node_the_services_write_through_stopped_then_started(system):
    writer = system.galera_writer()
    fault = system.fault_started()
    writer.stop()
    failover = system.wait_failover(fault)
    assert system.galera_writer() is not writer
    writer.start(timeout=180)  # rejoins by IST, Synced before it counts as up
    system.wait_clusters_whole()
    fault_end = system.ledger.fault_ended()
    system.finish("Galera writer node stopped", fault_end, failover)


def test_one_node_of_each_cluster_frozen_for_15_seconds(system):
    rabbit, galera = system.event_queue_leader(), system.galera_writer()
    rabbit.freeze()
    galera.freeze()
    try:
        eventlet.sleep(FREEZE_SECONDS)
    finally:
        rabbit.thaw()
        galera.thaw()
    # The frozen Galera node was dropped from the cluster meanwhile; it
    # rejoins, and HAProxy takes it back once it is Synced.
    system.wait_clusters_whole()
    fault_end = system.ledger.fault_ended()
    system.finish("a node of each cluster frozen 15 s", fault_end, None)


def test_processor_killed_while_a_rabbitmq_node_is_down(system):
    leader = system.event_queue_leader()
    fault = system.fault_started()
    leader.stop()
    failover = system.wait_failover(fault)
    victim = system.processors[0]
    victim.signal(signal.SIGKILL)  # no chance to finish, ack or requeue anything
    wait_until(lambda: not victim.running, 30, message="processor dead")
    restarted = system.restart_processor(0)
    # The new process consumes through the nodes that are left.
    wait_until(
        lambda: system.executions_by(restarted) > 0,
        FAILOVER_SECONDS,
        message="the restarted processor processing orders",
    )
    leader.start(timeout=180)
    fault_end = system.ledger.fault_ended()
    system.finish("processor SIGKILL, a RabbitMQ node down", fault_end, failover)

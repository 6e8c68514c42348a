"""compose.cluster.yaml for real (`make compose-cluster-check`, not part of
`make test`: docs/deployment.md#compose-cluster-check): three RabbitMQ
nodes, three Galera nodes behind HAProxy, TLS on every hop, with
podman-compose on images built here (compose.cluster.check.yaml). Each
service connects as the user the provision step made for it, and the
broker nodes take clients (AMQP, the management API) over TLS only. Orders
flow; one broker node (rabbitmq-1, the first in every service's AMQP_URI,
so the one they are all connected to) is stopped while they do, processing
goes on through the other two, the node is started again; then generation
stops, the backlog drains, and every order has been processed exactly
once, with /metrics equal to the database. The figures are printed for
docs/deployment.md. Torn down with `down -v` whatever happens, and checked
to leave nothing behind.
"""

import time

import pytest

from harness.processes import wait_until
from tests.compose.cluster_stack import BROKERS, ClusterStack
from tests.compose.stack import podman
from tests.compose.test_compose import DOWN, created, metrics_from_sql, processed

SETTINGS = {
    "ORDER_INTERVAL_SECONDS": "0.2",
    "ORDERS_PER_TICK": "5",
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    "STARTUP_WAIT_SECONDS": "300",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = ClusterStack(tmp_path_factory.mktemp("compose-cluster"), **SETTINGS)
    stack.make_certificates()
    try:
        started = time.monotonic()
        stack.start()
        print(f"\ncluster up in {time.monotonic() - started:.0f} s")
        yield stack
    finally:
        try:
            stack.compose(*DOWN)
        finally:
            stack.remove_certificates()


def test_each_service_connects_as_its_own_user(stack):
    """The provision step made the services' users, and each service logs
    in as its own: to the brokers (every connection the cluster has, the
    healthchecks' included) and to the database (through the proxy)."""
    wait_until(lambda: processed(stack) >= 1, 300, interval=1, message="an order processed")
    assert set(stack.broker_users()) == {"order_generator", "order_processor", "order_gateway"}
    assert stack.database_users() == {"order_generator", "order_processor"}


def test_the_broker_nodes_take_clients_over_tls_only(stack):
    """AMQP and the management API the provision step used: each node
    listens for them on their TLS ports alone (besides its clustering
    port, which is Erlang distribution over TLS)."""
    for service in BROKERS:
        assert stack.client_listeners(service) == {("amqp/ssl", 5671), ("https", 15671)}


def test_a_broker_node_stopped_while_orders_flow_loses_and_repeats_nothing(stack):
    wait_until(lambda: processed(stack) >= 50, 300, interval=1, message="50 orders processed")
    broker = stack.container("rabbitmq-1")
    at_stop = processed(stack)
    stopped = time.monotonic()
    podman("stop", "--time", "10", broker, timeout=60)
    # Processing goes on through the other two nodes.
    wait_until(lambda: processed(stack) >= at_stop + 100, 300, interval=1, message="100 more")
    failover = time.monotonic() - stopped
    podman("start", broker, timeout=60)
    wait_until(lambda: len(stack.running_brokers()) == 3, 300, 2, "rabbitmq-1 back")
    at_restart = processed(stack)
    wait_until(lambda: processed(stack) >= at_restart + 100, 300, interval=1, message="100 more")

    assert stack.post("/stop").status_code == 200
    wait_until(lambda: processed(stack) >= created(stack), 300, interval=1, message="drained")
    lost = stack.sql(
        "SELECT o.id FROM orders o LEFT JOIN order_process p ON p.order_id = o.id "
        "WHERE p.order_id IS NULL"
    )
    ((rows, distinct),) = stack.sql("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM order_process")
    print(
        f"orders created {created(stack)}, processed {rows} ({distinct} distinct), "
        f"lost {len(lost)}, duplicated {int(rows) - int(distinct)}; "
        f"100 orders processed {failover:.0f} s after rabbitmq-1 stopped"
    )
    assert lost == []
    assert int(rows) == int(distinct) == created(stack)
    assert stack.get("/metrics").json() == metrics_from_sql(stack)


def test_down_leaves_no_container_network_or_volume(stack):
    stack.compose(*DOWN)
    assert stack.containers(running_only=False) == []
    assert stack.networks() == set()
    assert stack.volumes() == set()
    assert stack.pods() == set()

"""`docker compose up --build` for real (`make compose-check`): compose.yaml
with podman-compose, on images built here (compose.check.yaml), checked as
a user would see it: orders created and processed, /metrics equal to the
database, the console, the control token, three processors sharing the
work, one killed mid-stream without an order lost or processed twice, and
`down -v` leaving nothing behind.

One stack for the module, under a compose project name of its own, torn
down at the end whatever happens; the tests run in file order, each from
where the one before left the stack. Not part of the pytest runs of
`make test`, which runs it through `make compose-check`.
"""

from decimal import ROUND_HALF_UP, Decimal

import pytest

from harness.processes import wait_until
from harness.tables import CENT
from tests.compose.stack import Stack, podman

# Orders flow fast enough for a few hundred in a minute.
SETTINGS = {
    "ORDER_INTERVAL_SECONDS": "0.2",
    "ORDERS_PER_TICK": "5",
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    # A cold broker or database in a container takes a while.
    "STARTUP_WAIT_SECONDS": "300",
}
START_SECONDS = 600
# After `--scale`, podman-compose 1.6's `down` stops and removes only the
# first container of each service (and then cannot remove the broker and
# database the others require): --remove-orphans removes every container of
# the project.
DOWN = ("down", "-v", "--remove-orphans", "--timeout", "10")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("compose"), **SETTINGS)
    try:
        # The four services built from the Dockerfile share one image: built
        # once first (podman-compose would build it four times side by side),
        # with the broker's and the database's alongside; then the rest of
        # `build` finds every layer made.
        stack.compose("build", "provision", "rabbitmq", "db")
        stack.compose("build")
        stack.compose("up", "-d")
        wait_until(stack.healthy, START_SECONDS, interval=1, message="the gateway's /health")
        yield stack
    finally:
        stack.compose(*DOWN)


def processed(stack):
    return int(stack.scalar("SELECT COUNT(*) FROM order_process"))


def created(stack):
    return int(stack.scalar("SELECT COUNT(*) FROM orders"))


def drained(stack):
    """Generation stopped, wait until every order created is processed."""
    assert stack.post("/stop").status_code == 200
    wait_until(lambda: processed(stack) >= created(stack), 180, interval=1, message="all processed")


def metrics_from_sql(stack):
    """What /metrics must say, from the processor's table (as
    harness.tables.sql_metrics computes it)."""
    ((count, total),) = stack.sql("SELECT COUNT(*), SUM(execution_price) FROM order_process")
    average = None
    if int(count):
        average = str((Decimal(total) / int(count)).quantize(CENT, ROUND_HALF_UP))
    return {"total_orders_processed": int(count), "average_execution_price": average}


def test_orders_are_created_and_processed_and_metrics_match_the_database(stack):
    wait_until(lambda: processed(stack) >= 50, 180, interval=1, message="50 orders processed")
    drained(stack)
    assert processed(stack) == created(stack)
    assert stack.get("/metrics").json() == metrics_from_sql(stack)


def test_the_console_is_served(stack):
    page = stack.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<html" in page.text.lower()


def test_control_needs_the_token(stack):
    assert stack.post("/start", token=False).status_code == 401
    assert stack.get("/status").json()["running"] is False
    assert stack.post("/start").status_code == 200
    assert stack.get("/status").json()["running"] is True


def test_three_processors_share_the_work(stack):
    stack.compose("up", "-d", "--scale", "processor=3")
    processors = stack.containers("processor")
    assert len(processors) == 3, processors
    newest = int(stack.scalar("SELECT COALESCE(MAX(id), 0) FROM orders"))

    def each_has_processed_new_orders():
        return all(
            any(order > newest for order in stack.processed_by(processor))
            for processor in processors
        )

    wait_until(each_has_processed_new_orders, 180, interval=2, message="work on each processor")


def test_a_processor_killed_mid_stream_loses_and_repeats_nothing(stack):
    processors = stack.containers("processor")
    victim = processors[0]
    before = len(stack.processed_by(victim))
    wait_until(
        lambda: len(stack.processed_by(victim)) > before, 60, message="the victim processing"
    )
    at_kill = processed(stack)
    podman("kill", victim)
    # Orders go on being processed by the others.
    wait_until(lambda: processed(stack) >= at_kill + 100, 180, interval=1, message="100 more")
    drained(stack)

    lost = stack.sql(
        "SELECT o.id FROM orders o LEFT JOIN order_process p ON p.order_id = o.id "
        "WHERE p.order_id IS NULL"
    )
    assert lost == []
    ((rows, distinct),) = stack.sql("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM order_process")
    assert int(rows) == int(distinct) == created(stack)
    assert stack.get("/metrics").json() == metrics_from_sql(stack)


def test_down_leaves_no_container_network_or_volume(stack):
    assert stack.volumes(), "the stack's volumes, before"
    stack.compose(*DOWN)
    assert stack.containers(running_only=False) == []
    assert stack.networks() == set()
    assert stack.volumes() == set()
    assert stack.pods() == set()

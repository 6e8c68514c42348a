"""Concurrent creates share one transaction: POST /orders requests share a
create_orders call in the gateway, create_order calls share a group commit
in the generator. Each caller still gets its own order, with the quantity
it asked for.

The services run in this process (tests/support/services.py). Which
requests share a call is set by the test, not by the machine's speed: the
first call is held (its service stopped, or a row lock it needs held by the
test) until the others are seen queued behind it; then exactly two calls
make every order, one transaction each, which the orders' create tokens
show (one token per create transaction)."""

import eventlet
import pytest
from sqlalchemy import create_engine, text

from harness.processes import wait_until
from harness.tables import sql
from order_pipeline.extensions.shared_batches import SharedBatches

# Long enough for the held call to wait however slow the machine is.
PATIENT_SECONDS = 60
QUANTITIES = [7, 1, 30, 2, 9, 4, 11, 5]


@pytest.fixture
def services(services):
    """tests/integration/conftest.py's, with patient RPC callers."""
    services.config["RPC_TIMEOUT_SECONDS"] = PATIENT_SECONDS
    return services


def shared_batches(services, name):
    """Service `name`'s SharedBatches for creates (not the gateway's SharedReads)."""
    container = services.containers[name]
    (batches,) = [d for d in container.dependencies if type(d) is SharedBatches]
    return batches


def calling(batches, key=None):
    """How many items the call in progress is for (0: none): what the
    round runner holds, read from its state (nothing public tells)."""
    return batches._calling.get(key, 0)


def queued(batches, key=None):
    """Items waiting for the next round."""
    return len(batches._waiting.get(key, ()))


def first_then_the_rest(services, name, send, quantities):
    """Send the first create and wait until its call is in progress alone,
    then the rest, and wait until they queue behind it; return what `send`
    returned for each."""
    batches = shared_batches(services, name)
    first = send(quantities[0])
    wait_until(lambda: calling(batches) == 1, 30, message="the first create's call")
    rest = [send(quantity) for quantity in quantities[1:]]
    wait_until(lambda: queued(batches) == len(rest), 30, message="the other creates queued")
    assert calling(batches) == 1
    return [first, *rest]


def create_transactions(db_uri, order_ids):
    """The orders' create tokens: one per transaction that created them."""
    rows = sql(
        db_uri,
        "SELECT COUNT(DISTINCT create_token) FROM orders WHERE id IN :ids",
        ids=tuple(order_ids),
    )
    return rows[0][0]


def stored_quantities(db_uri):
    return dict(sql(db_uri, "SELECT id, quantity FROM orders"))


def test_concurrent_post_orders_share_one_create_orders_call(services):
    services.start("generator", "processor", "gateway")
    # Stopped, the generator leaves its RPC queue behind: the first call
    # waits there while the other requests queue in the gateway.
    services.stop("generator")
    pool = eventlet.GreenPool()

    def post(quantity):
        return pool.spawn(
            services.post, "/orders", json={"quantity": quantity}, timeout=PATIENT_SECONDS
        )

    posts = first_then_the_rest(services, "gateway", post, QUANTITIES)
    services.start("generator")

    answers = [post.wait() for post in posts]
    assert [response.status_code for response, _ in answers] == [201] * len(QUANTITIES)
    orders = [body for _, body in answers]
    assert [order["quantity"] for order in orders] == QUANTITIES
    assert [response.headers["Location"] for response, _ in answers] == [
        f"/orders/{order['id']}" for order in orders
    ]
    ids = [order["id"] for order in orders]
    assert len(set(ids)) == len(ids)
    assert stored_quantities(services.db_uri) == dict(zip(ids, QUANTITIES))
    assert create_transactions(services.db_uri, ids) == 2  # the first alone, then the rest
    for response, order in answers[:2]:
        fetched = services.get(response.headers["Location"])[1]
        assert {key: fetched[key] for key in order} == order


def test_concurrent_create_order_calls_share_one_transaction(services):
    services.start("generator")
    # Holding every count row makes the first create wait for its lock.
    engine = create_engine(services.db_uri)
    holder = engine.connect()
    try:
        holder.execute(text("SELECT * FROM order_counts FOR UPDATE")).all()
        with services.rpc() as rpc:
            create_order = rpc.order_generator.create_order
            calls = first_then_the_rest(services, "generator", create_order.call_async, QUANTITIES)
            holder.rollback()
            orders = [call.result() for call in calls]
    finally:
        holder.close()
        engine.dispose()

    assert [order["quantity"] for order in orders] == QUANTITIES
    ids = [order["id"] for order in orders]
    assert len(set(ids)) == len(ids)
    assert stored_quantities(services.db_uri) == dict(zip(ids, QUANTITIES))
    assert create_transactions(services.db_uri, ids) == 2
    with services.rpc() as rpc:
        assert rpc.order_generator.status()["orders_created"] == len(QUANTITIES)

"""The services as `nameko run` processes with QUEUE_TYPE=quorum (quorum
queues work on a single node), and with an AMQP_URI listing a node that does
not answer before the real one."""

import signal

from amqp import Message
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE

from harness.broker import (
    HANDLER_QUEUE,
    publish_order_created,
    queue_depth,
    queue_properties,
)
from harness.processes import free_port, wait_until
from harness.tables import order_count, parked_dead_letters, unprocessed_order_ids
from order_contract import DEAD_LETTER_QUEUE
from order_pipeline.broker import connect
from order_pipeline.queues import DEAD_LETTER_DELIVERY_LIMIT, HANDLER_DELIVERY_LIMIT

INTERVAL = 0.2
# nameko's name for a reply queue, which the services' typed reply queues keep.
REPLY_QUEUE_PREFIX = RPC_REPLY_QUEUE_TEMPLATE.split("{")[0]


def orders_flow(system, db_uri):
    wait_until(lambda: order_count(db_uri) >= 5, 60, message="orders created")
    system.post("/stop").raise_for_status()
    wait_until(lambda: not unprocessed_order_ids(db_uri), 60, message="every order processed")


def test_with_quorum_every_queue_is_a_quorum_queue_and_orders_flow(pipeline, amqp_uri, db_uri):
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, QUEUE_TYPE="quorum").start()
    orders_flow(system, db_uri)

    queues = queue_properties(amqp_uri)
    assert HANDLER_QUEUE in queues and DEAD_LETTER_QUEUE in queues
    assert {name: row["type"] for name, row in queues.items() if row["type"] != "quorum"} == {}
    retries = [row for name, row in queues.items() if name.startswith(HANDLER_QUEUE + ".retry.")]
    assert retries
    for row in retries:
        assert row["arguments"]["x-dead-letter-strategy"] == "at-least-once"
        assert row["arguments"]["x-overflow"] == "reject-publish"
    # Delivery limits of their own (RabbitMQ 4 would give them 20), and past
    # the handler queue's the broker parks the message with the dead letters.
    handler = queues[HANDLER_QUEUE]["arguments"]
    assert handler["x-delivery-limit"] == HANDLER_DELIVERY_LIMIT
    assert handler["x-dead-letter-routing-key"] == DEAD_LETTER_QUEUE
    assert handler["x-dead-letter-strategy"] == "at-least-once"
    assert queues[DEAD_LETTER_QUEUE]["arguments"]["x-delivery-limit"] == DEAD_LETTER_DELIVERY_LIMIT
    # Every service calls over RPC (the generator asks the processor which
    # orders it has results for, for retention): one reply queue each.
    replies = {name: row for name, row in queues.items() if name.startswith(REPLY_QUEUE_PREFIX)}
    assert sorted(name.split("-")[1] for name in replies) == [
        "gateway",
        "order_generator",
        "order_processor",
    ]
    for row in replies.values():
        assert row["durable"] and not row["auto_delete"] and not row["exclusive"]
        assert row["arguments"]["x-expires"] == 300_000


def test_a_retry_queue_dead_letters_back_and_a_bad_event_reaches_the_dead_letters(
    pipeline, amqp_uri, db_uri
):
    """A malformed event left on the shortest (quorum) retry queue expires
    back into the handler's queue, whose handler dead-letters it: both the
    broker's at-least-once dead-lettering and the publisher's work; the
    processor keeps each in its table."""
    pipeline(GENERATE_ON_FIRST_START="false", QUEUE_TYPE="quorum").start()
    retry = min(
        (name for name in queue_properties(amqp_uri) if name.startswith(HANDLER_QUEUE + ".retry.")),
        key=lambda name: int(name.rsplit(".", 1)[1].removesuffix("ms")),
    )
    publish_order_created(amqp_uri, ["not json"], content_type="application/json")
    wait_until(lambda: parked_dead_letters(db_uri) == 1, 60, message="dead letter")
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        channel.confirm_select()
        channel.basic_publish_confirm(
            Message("still not json", content_type="application/json"),
            exchange="",
            routing_key=retry,
        )
    wait_until(lambda: parked_dead_letters(db_uri) == 2, 60, message="second one")
    assert queue_depth(amqp_uri, DEAD_LETTER_QUEUE) == 0


def test_a_dead_containers_reply_queue_is_deleted_by_the_broker(pipeline, amqp_uri, db_uri):
    system = pipeline(
        GENERATE_ON_FIRST_START="false", QUEUE_TYPE="quorum", RPC_REPLY_QUEUE_EXPIRES_SECONDS="2"
    ).start()
    system.get("/status").raise_for_status()  # the gateway's proxies are set up

    def gateway_reply_queues():
        prefix = REPLY_QUEUE_PREFIX + "gateway-"
        return [name for name in queue_properties(amqp_uri) if name.startswith(prefix)]

    assert len(gateway_reply_queues()) == 1
    system.gateway.signal(signal.SIGKILL)
    wait_until(lambda: not gateway_reply_queues(), 60, interval=0.5, message="queue expired")


def test_a_first_node_that_does_not_answer_is_passed_over_and_no_password_is_logged(
    pipeline, amqp_uri, db_uri
):
    vhost = amqp_uri.rsplit("/", 1)[1]
    dead_node = f"amqp://guest:first-node-secret@127.0.0.1:{free_port()}/{vhost}"
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, AMQP_URI=f"{dead_node};{amqp_uri}").start()
    orders_flow(system, db_uri)

    logs = "".join(process.output() for process in system.processes)
    # nameko's own warning about the node that did not answer quotes the
    # whole AMQP_URI: every password in it is masked.
    assert "Error connecting to broker at amqp://guest:********@127.0.0.1" in logs
    assert "first-node-secret" not in logs
    assert "guest:guest@" not in logs

"""QUEUE_TYPE on the real broker: re-creating a classic deployment's queues
as quorum queues without losing a message, refusing while consumers are
attached, a service meeting a queue of the wrong type, and an AMQP_URI
whose first node does not answer. (Quorum queues work on a single node.)"""

import os
import subprocess
import sys

import pytest
from amqp import Message
from kombu import Queue

from harness.broker import (
    HANDLER_QUEUE,
    publish_order_created,
    queue_depth,
    queue_properties,
)
from harness.processes import CONFIG, NAMEKO, ROOT, free_port
from order_contract import DEAD_LETTER_QUEUE
from order_pipeline.broker import connect
from order_pipeline.commands.recreate_queues import TEMPORARY_SUFFIX, project_queues
from order_pipeline.config import load_config
from order_pipeline.queues import (
    DEAD_LETTER_DELIVERY_LIMIT,
    HANDLER_DELIVERY_LIMIT,
    RECREATE_COMMAND,
)

EVENTS = 40
DEAD_LETTERS = 7
RPC_REQUESTS = 3


def config_for(amqp_uri, kind):
    config = load_config(CONFIG)
    config.update(AMQP_URI=amqp_uri, QUEUE_TYPE=kind)
    return config


def declare_as_nameko_did(amqp_uri):
    """The project's queues as a deployment from before QUEUE_TYPE has
    them: classic, declared without `x-queue-type`."""
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        for queue in project_queues(config_for(amqp_uri, "classic")):
            arguments = dict(queue.queue_arguments)
            del arguments["x-queue-type"]
            Queue(
                queue.name,
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                durable=True,
                queue_arguments=arguments,
            ).bind(channel).declare()


def publish_direct(amqp_uri, queue_name, count):
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        channel.confirm_select()
        for number in range(count):
            channel.basic_publish_confirm(
                Message(f"message {number}", application_headers={"x-number": number}),
                exchange="",
                routing_key=queue_name,
            )


def recreate(amqp_uri, kind="quorum"):
    return subprocess.run(
        [sys.executable, "-m", "order_pipeline.commands.recreate_queues", "--config", CONFIG],
        cwd=ROOT,
        env={**os.environ, "AMQP_URI": amqp_uri, "QUEUE_TYPE": kind},
        capture_output=True,
        text=True,
        timeout=120,
    )


def project_messages(amqp_uri):
    """{queue: messages} from the broker's answer to a passive declare
    (rabbitmqctl's figures for a quorum queue may lag a moment)."""
    queues = project_queues(config_for(amqp_uri, "classic"))
    return {queue.name: queue_depth(amqp_uri, queue.name) for queue in queues}


def test_recreate_moves_a_classic_deployment_to_quorum_keeping_every_message(amqp_uri):
    declare_as_nameko_did(amqp_uri)
    publish_order_created(amqp_uri, [{"order_id": n} for n in range(1, EVENTS + 1)])
    publish_direct(amqp_uri, DEAD_LETTER_QUEUE, DEAD_LETTERS)
    publish_direct(amqp_uri, "rpc-order_generator", RPC_REQUESTS)
    before = project_messages(amqp_uri)
    assert sum(before.values()) == EVENTS + DEAD_LETTERS + RPC_REQUESTS

    done = recreate(amqp_uri)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{HANDLER_QUEUE}: re-created as quorum, {EVENTS} message(s) kept" in done.stdout
    assert project_messages(amqp_uri) == before, done.stdout
    after = queue_properties(amqp_uri)
    assert {after[name]["type"] for name in before} == {"quorum"}
    assert not [name for name in after if name.endswith(TEMPORARY_SUFFIX)]
    # The messages kept their headers, and the event queue its binding.
    with connect(amqp_uri) as connection:
        message = connection.channel().basic_get(DEAD_LETTER_QUEUE, no_ack=True)
    assert message.body in ("message 0", b"message 0")
    assert message.properties["application_headers"]["x-number"] == 0
    publish_order_created(amqp_uri, [{"order_id": EVENTS + 1}])
    assert queue_depth(amqp_uri, HANDLER_QUEUE) == EVENTS + 1

    again = recreate(amqp_uri)
    assert again.returncode == 0 and "done: 0 queue(s) re-created" in again.stdout


def test_recreate_gives_a_quorum_deployment_from_before_delivery_limits_its_limits(amqp_uri):
    """Quorum queues declared before they stated their delivery limits: the
    services would refuse them (other arguments); re-creating them keeps
    their messages and gives them their limits."""
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        for queue in project_queues(config_for(amqp_uri, "quorum")):
            arguments = {
                name: value
                for name, value in queue.queue_arguments.items()
                if name != "x-delivery-limit"
            }
            if queue.name == HANDLER_QUEUE:  # nor a place to park past its limit
                arguments = {"x-queue-type": "quorum"}
            Queue(
                queue.name,
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                durable=True,
                queue_arguments=arguments,
            ).bind(channel).declare()
    publish_order_created(amqp_uri, [{"order_id": n} for n in range(1, 4)])
    publish_direct(amqp_uri, DEAD_LETTER_QUEUE, DEAD_LETTERS)

    done = recreate(amqp_uri)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{HANDLER_QUEUE}: re-created as quorum, 3 message(s) kept" in done.stdout
    assert f"{DEAD_LETTER_QUEUE}: re-created as quorum, {DEAD_LETTERS} message(s) kept" in (
        done.stdout
    )
    after = queue_properties(amqp_uri)
    assert after[HANDLER_QUEUE]["arguments"]["x-delivery-limit"] == HANDLER_DELIVERY_LIMIT
    assert after[HANDLER_QUEUE]["arguments"]["x-dead-letter-routing-key"] == DEAD_LETTER_QUEUE
    assert after[DEAD_LETTER_QUEUE]["arguments"]["x-delivery-limit"] == DEAD_LETTER_DELIVERY_LIMIT


def test_recreate_refuses_while_a_consumer_is_attached(amqp_uri):
    declare_as_nameko_did(amqp_uri)
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        channel.basic_consume("rpc-order_processor", callback=lambda message: None)
        done = recreate(amqp_uri)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: consumers are attached to rpc-order_processor (1); stop the services first"
    ]
    assert {row["type"] for row in queue_properties(amqp_uri).values()} == {"classic"}


@pytest.mark.parametrize("declared, configured", [("classic", "quorum"), ("quorum", "classic")])
def test_a_queue_of_the_other_type_stops_the_service_with_one_line(
    amqp_uri, db_uri, declared, configured
):
    if declared == "classic":
        declare_as_nameko_did(amqp_uri)
    else:
        with connect(amqp_uri) as connection:
            channel = connection.channel()
            for queue in project_queues(config_for(amqp_uri, "quorum")):
                queue.bind(channel).declare()
    done = subprocess.run(
        [str(NAMEKO), "run", "--config", CONFIG, "processor_service"],
        cwd=ROOT,
        env={
            **os.environ,
            "AMQP_URI": amqp_uri,
            "DB_URI": db_uri,
            "QUEUE_TYPE": configured,
            "PYTHONWARNINGS": "ignore",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert f"QUEUE_TYPE={configured}" in errors[0] and RECREATE_COMMAND in errors[0]
    assert any(queue.name in errors[0] for queue in project_queues(config_for(amqp_uri, "classic")))


def test_a_first_node_that_does_not_answer_is_passed_over(amqp_uri):
    vhost_path = amqp_uri.rsplit("/", 1)[1]
    dead_node = f"amqp://guest:not-this-one@127.0.0.1:{free_port()}/{vhost_path}"
    nodes = f"{dead_node};{amqp_uri}"
    publish_order_created(nodes, [{"order_id": 1}, {"order_id": 2}])
    assert queue_depth(nodes, "no-such-queue") == 0
    with connect(nodes) as connection:
        assert connection.as_uri().endswith(vhost_path)
        assert "5672" in connection.as_uri()

"""The queue-type policy, the masking of broker passwords, and the
QUEUE_TYPE setting, without a broker (tests/integration/test_queue_types.py
and tests/e2e/test_quorum.py use the real one)."""

import logging

import pytest
from kombu import Exchange

from order_pipeline.broker import mask_uri, node_count, starting_at
from order_pipeline.commands.shell import banner
from order_pipeline.errors import StartupError
from order_pipeline.logs import console_formatter
from order_pipeline.queues import (
    DEAD_LETTER_DELIVERY_LIMIT,
    HANDLER_DELIVERY_LIMIT,
    dead_letter_queue_for,
    durable_queue,
    handler_queue,
    queue_arguments,
    retry_queue,
)
from order_pipeline.settings import queue_type

TWO_NODES = "amqp://alice:first-secret@h1:5672/v;amqp://bob:second%40secret@h2:5672/v"


def test_every_queue_is_durable_shared_and_names_its_type():
    for kind in ("classic", "quorum"):
        queue = durable_queue("q", kind)
        assert queue.durable and not queue.exclusive and not queue.auto_delete
        assert queue.queue_arguments["x-queue-type"] == kind


def test_quorum_queues_that_dead_letter_do_it_at_least_once():
    retry = retry_queue("q", 0.5, "quorum")
    assert retry.name == "q.retry.500ms"
    assert retry.queue_arguments["x-dead-letter-routing-key"] == "q"
    assert retry.queue_arguments["x-dead-letter-strategy"] == "at-least-once"
    # RabbitMQ refuses at-least-once without reject-publish.
    assert retry.queue_arguments["x-overflow"] == "reject-publish"
    # The dead-letter queue is published to, and dead-letters nothing itself.
    assert "x-dead-letter-strategy" not in dead_letter_queue_for("q", "quorum").queue_arguments
    # Classic queues have no such strategy: their arguments stay as they were.
    assert queue_arguments("classic", dead_letters=True) == {"x-queue-type": "classic"}


def test_quorum_queues_whose_messages_matter_state_their_own_delivery_limit():
    exchange = Exchange("source.events", type="topic")
    handler = handler_queue("q", "quorum", exchange, "Thing")
    # Past its limit the broker parks a message with the dead letters: never drops it.
    assert handler.queue_arguments["x-delivery-limit"] == HANDLER_DELIVERY_LIMIT
    assert handler.queue_arguments["x-dead-letter-exchange"] == ""
    assert handler.queue_arguments["x-dead-letter-routing-key"] == "q.dead-letter"
    assert handler.queue_arguments["x-dead-letter-strategy"] == "at-least-once"
    assert handler.routing_key == "Thing" and handler.exchange is exchange
    # A positive limit: -1, "no limit" on RabbitMQ 4, drops at once on 3.x.
    dead = dead_letter_queue_for("q", "quorum")
    assert dead.queue_arguments["x-delivery-limit"] == DEAD_LETTER_DELIVERY_LIMIT > 0
    # Classic queues have no delivery limit: their arguments stay as they were.
    assert handler_queue("q", "classic", exchange, "Thing").queue_arguments == {
        "x-queue-type": "classic"
    }
    assert dead_letter_queue_for("q", "classic").queue_arguments == {"x-queue-type": "classic"}


def test_queue_type_is_classic_or_quorum():
    assert queue_type({"QUEUE_TYPE": "Quorum"}) == "quorum"
    assert queue_type({"QUEUE_TYPE": "classic"}) == "classic"
    with pytest.raises(StartupError, match="QUEUE_TYPE must be 'classic' or 'quorum'"):
        queue_type({"QUEUE_TYPE": "stream"})


def test_mask_uri_hides_the_password_of_every_node():
    masked = mask_uri(TWO_NODES)
    assert masked == "amqp://alice:********@h1:5672/v;amqp://bob:********@h2:5672/v"
    assert mask_uri("amqp://h1/;amqp://guest@h2/") == "amqp://h1/;amqp://guest@h2/"
    assert node_count(TWO_NODES) == 2


def test_a_node_list_can_start_at_any_of_its_nodes():
    three = "amqp://h1/v;amqp://h2/v; amqp://h3/v"
    assert starting_at(three, 0) == "amqp://h1/v;amqp://h2/v;amqp://h3/v"
    assert starting_at(three, 1) == "amqp://h2/v;amqp://h3/v;amqp://h1/v"
    assert starting_at(three, 5) == "amqp://h3/v;amqp://h1/v;amqp://h2/v"
    assert starting_at("amqp://h1/v", 7) == "amqp://h1/v"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_hide_every_node_password(log_format):
    record = logging.LogRecord(
        "nameko.messaging", logging.WARNING, __file__, 1, "at %s", (TWO_NODES,), None
    )
    line = console_formatter(log_format).format(record)
    assert "first-secret" not in line and "second%40secret" not in line
    assert line.count("********") == 2


def test_the_shell_banner_hides_every_node_password():
    text = banner(TWO_NODES)
    assert "secret" not in text and text.count("********") == 2

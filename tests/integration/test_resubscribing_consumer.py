"""A consumer the broker has forgotten subscribes again.

The broker's side of the state seen after a quorum queue's leader change
(rabbitmq-server#15473) is made here by cancelling the service's consumer at
the broker behind nameko's back: the broker then delivers nothing to it,
while the service goes on waiting on a healthy connection."""

import logging

import pytest
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import get_extension

from harness.processes import wait_until
from order_pipeline.broker import connect
from order_pipeline.extensions.resubscribing_consumer import ResubscribingQueueConsumer
from order_pipeline.extensions.rpc import rpc


class Echo:
    name = "echo"

    @rpc
    def echo(self, text):
        return text


def consumers_on(amqp_uri, queue_name):
    with connect(amqp_uri) as connection:
        return connection.channel().queue_declare(queue=queue_name, passive=True).consumer_count


def forget(queue_consumer):
    """Cancel every consumer of `queue_consumer` at the broker, without
    telling it (no wait for the broker's answer, which its own loop would
    read and act on)."""
    channel = queue_consumer.live_connection.default_channel
    for consumer_tag in list(channel.callbacks):
        channel.basic_cancel(consumer_tag, nowait=True)


@pytest.fixture
def echo_service(amqp_uri):
    config = {
        "AMQP_URI": amqp_uri,
        "QUEUE_TYPE": "classic",
        "RPC_REPLY_QUEUE_EXPIRES_SECONDS": 300,
        "CONSUMER_RESUBSCRIBE_SECONDS": 1,
    }
    container = ServiceContainer(Echo, config)
    container.start()
    try:
        yield container
    finally:
        container.stop()


def test_an_rpc_consumer_the_broker_forgot_subscribes_again_and_answers(
    amqp_uri, echo_service, caplog
):
    caplog.set_level(logging.WARNING, logger="order_pipeline.extensions.resubscribing_consumer")
    queue_consumer = get_extension(echo_service, ResubscribingQueueConsumer)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as client:
        assert client.echo.echo("before") == "before"

        forget(queue_consumer)
        wait_until(lambda: consumers_on(amqp_uri, "rpc-echo") == 0, timeout=30)

        # The request waits on the queue until the consumer subscribes again.
        assert client.echo.echo("after") == "after"
    assert consumers_on(amqp_uri, "rpc-echo") == 1
    assert any(
        "echo: subscribing again: nothing delivered" in record.getMessage()
        for record in caplog.records
    )

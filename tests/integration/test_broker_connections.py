"""Closing the project's own broker connections when the node does not
answer: the close returns within its bound and the socket is dropped,
rather than waiting for a close-ok that may never come (a stopping service
would wait with it)."""

from urllib.parse import urlsplit

import eventlet

from order_pipeline.broker import close_connection, connect
from tests.support.relay import Relay


def test_closing_a_connection_to_a_node_that_froze_returns_and_drops_the_socket(amqp_uri):
    parts = urlsplit(amqp_uri)
    relay = Relay(parts.hostname, parts.port).start()
    try:
        through_relay = parts._replace(
            netloc=f"{parts.username}:{parts.password}@127.0.0.1:{relay.port}"
        )
        connection = connect(through_relay.geturl(), connect_timeout=5)
        relay.hold()
        closing = eventlet.spawn(close_connection, connection, 0.5)
        # Far longer than the bound: without it the close waits for ever.
        with eventlet.Timeout(30, AssertionError("the close waited for the frozen node")):
            closing.wait()
            relay.client_closed.wait()
    finally:
        relay.close()

"""ReplyTolerantRpc: a call whose reply, and then whose ack, the broker
cannot take (its connection is gone) leaves the service running."""

from order_pipeline.extensions.rpc import ReplyTolerantRpc


class GoneQueueConsumer:
    def __init__(self):
        self.acked = []

    def ack_message(self, message):
        self.acked.append(message)
        raise BrokenPipeError(32, "Broken pipe")


class GoneRpcConsumer:
    """nameko's RpcConsumer on a connection that a stopped node reset."""

    def __init__(self):
        self.queue_consumer = GoneQueueConsumer()

    def handle_result(self, message, result, exc_info):
        raise ConnectionResetError(104, "Connection reset by peer")


def test_a_failed_ack_after_a_failed_reply_is_logged_not_raised(caplog):
    entrypoint = ReplyTolerantRpc()
    entrypoint.rpc_consumer = GoneRpcConsumer()

    assert entrypoint.handle_result("request", "worker", "result", None) == ("result", None)
    assert entrypoint.rpc_consumer.queue_consumer.acked == ["request"]
    assert "its reply could not be sent: ConnectionResetError" in caplog.text
    assert "could not be acknowledged either: BrokenPipeError" in caplog.text

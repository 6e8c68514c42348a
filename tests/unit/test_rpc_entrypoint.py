"""ReplyTolerantRpc: a call whose reply, and then whose ack, the broker
cannot take (its connection is gone) leaves the service running; a request
delivered again after it ran is answered again, not run twice."""

from order_pipeline.extensions.rpc import AnsweredCalls, ReplyTolerantRpc


class Message:
    def __init__(self, correlation_id="call-1", redelivered=False):
        self.properties = {"correlation_id": correlation_id}
        self.delivery_info = {"redelivered": redelivered}


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
        self.answered = AnsweredCalls()

    def handle_result(self, message, result, exc_info):
        raise ConnectionResetError(104, "Connection reset by peer")


class RpcConsumer:
    """nameko's RpcConsumer on a healthy connection: records the replies."""

    def __init__(self):
        self.answered = AnsweredCalls()
        self.replies = []

    def handle_result(self, message, result, exc_info):
        self.replies.append((message, result, exc_info))
        return result, exc_info


class Container:
    def __init__(self):
        self.workers = []

    def spawn_worker(self, entrypoint, args, kwargs, context_data, handle_result):
        self.workers.append(args)


def entrypoint_with(consumer):
    entrypoint = ReplyTolerantRpc()
    entrypoint.rpc_consumer = consumer
    entrypoint.container = Container()
    entrypoint.method_name = "create_orders"
    entrypoint.check_signature = lambda args, kwargs: None
    entrypoint.unpack_message_headers = lambda message: {}
    return entrypoint


def test_a_failed_ack_after_a_failed_reply_is_logged_not_raised(caplog):
    entrypoint = entrypoint_with(GoneRpcConsumer())
    request = Message()

    assert entrypoint.handle_result(request, "worker", "result", None) == ("result", None)
    assert entrypoint.rpc_consumer.queue_consumer.acked == [request]
    assert "its reply could not be sent: ConnectionResetError" in caplog.text
    assert "could not be acknowledged either: BrokenPipeError" in caplog.text


def test_a_request_delivered_again_after_it_ran_is_answered_not_run_again(caplog):
    entrypoint = entrypoint_with(RpcConsumer())
    body = {"args": [[5, 5]], "kwargs": {}}
    entrypoint.handle_message(body, Message())
    assert entrypoint.container.workers == [[[5, 5]]]
    entrypoint.handle_result(Message(), "worker", [{"id": 1}, {"id": 2}], None)

    again = Message(redelivered=True)
    entrypoint.handle_message(body, again)

    assert entrypoint.container.workers == [[[5, 5]]]  # not run a second time
    assert entrypoint.rpc_consumer.replies[-1] == (again, [{"id": 1}, {"id": 2}], None)
    assert "delivered again after it ran here" in caplog.text


def test_a_redelivered_request_that_never_ran_here_runs():
    entrypoint = entrypoint_with(RpcConsumer())
    entrypoint.handle_message({"args": [[5]], "kwargs": {}}, Message("other", redelivered=True))
    assert entrypoint.container.workers == [[[5]]]


def test_only_the_last_replies_are_kept():
    answered = AnsweredCalls(size=2)
    for name in ("a", "b", "c"):
        answered.remember(name, name, None)
    assert answered.reply_to(Message("a", redelivered=True)) is None
    assert answered.reply_to(Message("c", redelivered=True)) == ("c", None)


class QueueConsumer:
    def __init__(self):
        self.acked = []

    def ack_message(self, message):
        self.acked.append(message)


def test_a_request_delivered_again_while_it_runs_here_is_acked_not_run_again(caplog):
    consumer = RpcConsumer()
    consumer.queue_consumer = QueueConsumer()
    entrypoint = entrypoint_with(consumer)
    body = {"args": [[5]], "kwargs": {}}
    entrypoint.handle_message(body, Message())
    again = Message(redelivered=True)
    entrypoint.handle_message(body, again)
    assert entrypoint.container.workers == [[[5]]]
    assert consumer.queue_consumer.acked == [again]
    assert "delivered again while it runs here" in caplog.text

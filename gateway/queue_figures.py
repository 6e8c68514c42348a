"""What the broker says about the processor's event queue: the console's
services panel, read by the gateway itself so that it still shows the
backlog and the consumer count when the processor is down."""

from amqp.exceptions import NotFound
from nameko.extensions import DependencyProvider

from order_contract import ORDER_CREATED_QUEUE
from order_pipeline.broker import Broker, broker, connect

CONNECT_TIMEOUT_SECONDS = 2


def passive_declare(channel, name):
    """(messages ready, consumers) of a queue; (0, 0) if it does not exist
    (a passive declare creates nothing)."""
    try:
        declared = channel.queue_declare(queue=name, passive=True)
    except NotFound:
        return 0, 0
    return declared.message_count, declared.consumer_count


def read_queue_figures(target: Broker) -> dict:
    """{"queue_depth", "consumers"} from the broker."""
    with connect(target, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        depth, consumers = passive_declare(connection.channel(), ORDER_CREATED_QUEUE)
    return {"queue_depth": depth, "consumers": consumers}


class QueueFigures(DependencyProvider):
    """Injects `read() -> dict` (see read_queue_figures)."""

    def setup(self):
        self.broker = broker(self.container.config)

    def get_dependency(self, worker_ctx):
        return lambda: read_queue_figures(self.broker)

"""Which type of queue the services declare (QUEUE_TYPE), and how.

`classic` queues live on one RabbitMQ node: in a cluster, when that node
dies its queues are gone until it returns. `quorum` queues are replicated
(Raft) over the cluster's nodes and survive the loss of a minority. nameko
hard-codes its declarations, so the subclasses next to the ones it replaces
(order_pipeline.extensions: rpc, rpc_proxy, reliable_events) build their
queues with `durable_queue`, which holds the whole policy:

- every queue is durable, never exclusive nor auto-delete (a quorum queue
  refuses both), and names its type in `x-queue-type`, so that meeting a
  queue of the other type fails at once (PRECONDITION_FAILED) in either
  direction;
- a quorum queue that dead-letters (the retry queues, whose expired messages
  go back to the handler's queue) does so `at-least-once`, which RabbitMQ
  allows only with `x-overflow: reject-publish`: the default, at-most-once,
  drops a message whose target is briefly unavailable;
- a quorum queue counts the times each message was delivered and went back
  unsettled (a consumer that stopped, died or requeued it), and past its
  delivery limit drops the message, or dead-letters it if it can. RabbitMQ
  4 sets a limit of 20 on every quorum queue that has none; 3.x has none.
  The queues whose messages matter therefore state their own
  (`x-delivery-limit`): the handler's queue HANDLER_DELIVERY_LIMIT, past
  which the broker parks the message on the dead-letter queue (a message
  that kills the processor each time it is handled, say), and the
  dead-letter queue DEAD_LETTER_DELIVERY_LIMIT, which is never reached in
  practice. (-1, "no limit" on RabbitMQ 4, drops a message at its first
  return on 3.x.) The RPC queues keep the broker's default: a request
  delivered 20 times has long been given up by its caller.

A queue cannot change type once declared: `order_pipeline.commands.recreate_queues`
(`make recreate-queues`) moves a deployment's queues to the configured type.
"""

from amqp.exceptions import PreconditionFailed
from kombu import Exchange, Queue

from order_pipeline.broker import broker, check_broker, connect
from order_pipeline.errors import StartupError
from order_pipeline.settings import QUEUE_TYPES, queue_type

CLASSIC, QUORUM = QUEUE_TYPES

# The headers of a message the event handler sets aside (on a retry queue,
# or the dead-letter queue): how many attempts failed, why the last did, and
# each failure (order_pipeline.failures).
ATTEMPT_HEADER = "x-attempt"
ERROR_HEADER = "x-error"
FAILURES_HEADER = "x-failures"
# Set each time a message is dead-lettered: a new id for this stay on the
# dead-letter queue, and when it began (ISO 8601 UTC).
DEAD_LETTER_ID_HEADER = "x-dead-letter-id"
DEAD_LETTERED_AT_HEADER = "x-dead-lettered-at"
# See the module's docstring. A processor restarted while it holds a message
# returns it once; a hundred returns is a message that never gets settled.
HANDLER_DELIVERY_LIMIT = 100
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000
RECREATE_COMMAND = "python -m order_pipeline.commands.recreate_queues --config config.yml"


def queue_arguments(kind: str, dead_letters: bool = False) -> dict:
    """The arguments a queue of type `kind` is declared with (besides its
    own, such as a TTL); `dead_letters`: the broker dead-letters from it."""
    arguments = {"x-queue-type": kind}
    if kind == QUORUM and dead_letters:
        arguments["x-dead-letter-strategy"] = "at-least-once"
        arguments["x-overflow"] = "reject-publish"
    return arguments


def durable_queue(
    name: str,
    kind: str,
    exchange: Exchange | None = None,
    routing_key: str = "",
    arguments: dict | None = None,
) -> Queue:
    """A durable, shared queue of type `kind` (see the module's docstring)."""
    arguments = dict(arguments or {})
    dead_letters = "x-dead-letter-exchange" in arguments
    arguments.update(queue_arguments(kind, dead_letters))
    return Queue(
        name,
        exchange=exchange,
        routing_key=routing_key,
        durable=True,
        exclusive=False,
        auto_delete=False,
        queue_arguments=arguments,
    )


def retry_queue(handler_queue: str, delay_seconds: float, kind: str) -> Queue:
    """Where a failed message waits `delay_seconds` before the broker
    dead-letters it back to `handler_queue`."""
    delay_ms = int(delay_seconds * 1000)
    return durable_queue(
        f"{handler_queue}.retry.{delay_ms}ms",
        kind,
        arguments={
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": handler_queue,
        },
    )


def handler_queue(name: str, kind: str, exchange: Exchange, routing_key: str) -> Queue:
    """An event handler's queue: as a quorum queue, with its delivery limit
    and the dead-letter queue beside it as the place past it."""
    arguments = {}
    if kind == QUORUM:
        arguments = {
            "x-delivery-limit": HANDLER_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead_letter_queue_name(name),
        }
    return durable_queue(name, kind, exchange, routing_key=routing_key, arguments=arguments)


def dead_letter_queue_name(handler_queue_name: str) -> str:
    return handler_queue_name + ".dead-letter"


def dead_letter_queue_for(handler_queue_name: str, kind: str) -> Queue:
    """Where the handler of `handler_queue_name` parks what it cannot handle."""
    arguments = {"x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT} if kind == QUORUM else {}
    return durable_queue(dead_letter_queue_name(handler_queue_name), kind, arguments=arguments)


class WrongQueueType(StartupError):
    def __init__(self, queue_name: str, kind: str, detail: str):
        super().__init__(
            f"queue {queue_name} exists with other arguments than QUEUE_TYPE={kind} "
            f"needs ({detail}); stop the services and run `{RECREATE_COMMAND}` "
            "(make recreate-queues)"
        )


def declare_checked(connection, queues: list[Queue], kind: str) -> None:
    """Declare `queues` (with their exchanges and bindings); a queue that
    exists with another type is a one-line StartupError naming it."""
    for queue in queues:
        # A refused declare closes its channel: one channel per queue.
        channel = connection.channel()
        try:
            queue.bind(channel).declare()
        except PreconditionFailed as exc:
            raise WrongQueueType(queue.name, kind, _reason(exc)) from None
        finally:
            close_quietly(channel)


def declare_at_start(config: dict, queues: list[Queue]) -> None:
    """For an extension's `setup()`: the broker answers and `queues` are
    declared with QUEUE_TYPE, or a one-line StartupError says why not."""
    check_broker(config)
    with connect(broker(config), connect_timeout=5) as connection:
        declare_checked(connection, queues, queue_type(config))


def _reason(exc):
    text = str(getattr(exc, "reply_text", "") or exc)
    return text.split(" - ", 1)[-1].split(" for queue ")[0]


def close_quietly(channel):
    try:
        channel.close()
    except Exception:  # already closed by the broker
        pass

"""Which type of queue the services declare (QUEUE_TYPE), and re-creating a
deployment's queues when that changes.

`classic` queues live on one RabbitMQ node: in a cluster, when that node
dies its queues are gone until it returns. `quorum` queues are replicated
(Raft) over the cluster's nodes and survive the loss of a minority. nameko
hard-codes its declarations, so the subclasses next to the ones it replaces
(order_pipeline.rpc_entrypoint, order_pipeline.rpc, reliable_events) build
their queues with `durable_queue`, which holds the whole policy:

- every queue is durable, never exclusive nor auto-delete (a quorum queue
  refuses both), and names its type in `x-queue-type`, so that meeting a
  queue of the other type fails at once (PRECONDITION_FAILED) in either
  direction;
- a quorum queue that dead-letters (the retry queues, whose expired messages
  go back to the handler's queue) does so `at-least-once`, which RabbitMQ
  allows only with `x-overflow: reject-publish`: the default, at-most-once,
  drops a message whose target is briefly unavailable.

A queue cannot change type once declared. `recreate` moves each of the
project's queues to the configured type without losing a message:

    python -m order_pipeline.queues recreate --config config.yml

(`make recreate-queues`). With the services stopped, for each queue of the
wrong type: move its messages to `<queue>.recreating` (each published with a
confirm before it is acked), delete it, declare it again with its bindings,
move the messages back, delete the temporary queue. It refuses to start while
any consumer is attached. Interrupted, it can be run again: a temporary queue
left over is emptied back into its queue.
"""

import argparse
import sys
from collections.abc import Callable

from amqp import Message
from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Exchange, Queue

from order_pipeline.broker import check_broker, connect, mask_uri
from order_pipeline.errors import StartupError
from order_pipeline.settings import QUEUE_TYPES, amqp_uri, queue_type

CLASSIC, QUORUM = QUEUE_TYPES
RECREATE_COMMAND = "python -m order_pipeline.queues recreate --config config.yml"
TEMPORARY_SUFFIX = ".recreating"
CONFIRM_TIMEOUT_SECONDS = 10


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


def dead_letter_queue(handler_queue: str, kind: str) -> Queue:
    return durable_queue(handler_queue + ".dead-letter", kind)


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
            _close_quietly(channel)


def declare_at_start(config: dict, queues: list[Queue]) -> None:
    """For an extension's `setup()`: the broker answers and `queues` are
    declared with QUEUE_TYPE, or a one-line StartupError says why not."""
    check_broker(config)
    with connect(amqp_uri(config), connect_timeout=5) as connection:
        declare_checked(connection, queues, queue_type(config))


def _reason(exc):
    text = str(getattr(exc, "reply_text", "") or exc)
    return text.split(" - ", 1)[-1].split(" for queue ")[0]


def _close_quietly(channel):
    try:
        channel.close()
    except Exception:  # already closed by the broker
        pass


# --- the project's queues ------------------------------------------------------


def project_queues(config: dict) -> list[Queue]:
    """Every durable queue the services declare under `config`, with its
    bindings. (RPC reply queues are left out: each is named for one
    container, and a stopped container's expires on its own.)"""
    # Here, not at the top: the contract's names, and nameko's templates.
    from nameko.rpc import RPC_QUEUE_TEMPLATE, get_rpc_exchange
    from nameko.standalone.events import get_event_exchange

    from order_contract import GENERATOR, ORDER_CREATED, ORDER_CREATED_QUEUE, PROCESSOR
    from order_pipeline.reliable_events import retry_delays
    from order_pipeline.settings import retry_settings

    kind = queue_type(config)
    rpc_exchange = get_rpc_exchange(config)
    queues = [
        durable_queue(
            RPC_QUEUE_TEMPLATE.format(service), kind, rpc_exchange, routing_key=f"{service}.*"
        )
        for service in (GENERATOR, PROCESSOR)
    ]
    queues.append(
        durable_queue(
            ORDER_CREATED_QUEUE,
            kind,
            get_event_exchange(GENERATOR, config),
            routing_key=ORDER_CREATED,
        )
    )
    retry = retry_settings(config)
    for delay in retry_delays(retry.first_delay_seconds, retry.max_delay_seconds):
        queues.append(retry_queue(ORDER_CREATED_QUEUE, delay, kind))
    queues.append(dead_letter_queue(ORDER_CREATED_QUEUE, kind))
    return queues


# --- recreate ------------------------------------------------------------------


class QueuesInUse(Exception):
    """A consumer is attached to a queue that would be re-created."""


def recreate(amqp_uri: str, queues: list[Queue], kind: str, say: Callable[[str], None]) -> int:
    """Re-create each of `queues` that exists with other arguments than
    `kind` needs; returns how many were re-created."""
    with connect(amqp_uri, connect_timeout=5) as connection:
        present = {}
        for queue in queues:
            figures = _passive(connection, queue.name)
            if figures is not None:
                present[queue.name] = figures
        busy = [f"{name} ({consumers})" for name, (_, consumers) in present.items() if consumers]
        if busy:
            raise QueuesInUse(
                "consumers are attached to " + ", ".join(busy) + "; stop the services first"
            )
        recreated = 0
        for queue in queues:
            leftover = _passive(connection, queue.name + TEMPORARY_SUFFIX)
            if queue.name not in present and leftover is None:
                say(f"{queue.name}: not declared yet (the services will declare it as {kind})")
                continue
            if leftover is None and _declares(connection, queue):
                say(f"{queue.name}: already {kind}, {present[queue.name][0]} message(s) left as is")
                continue
            moved = _recreate_one(connection, queue, kind)
            say(f"{queue.name}: re-created as {kind}, {moved} message(s) kept")
            recreated += 1
    return recreated


def _passive(connection, name):
    """(messages, consumers) of a queue, or None if it does not exist."""
    channel = connection.channel()
    try:
        declared = channel.queue_declare(queue=name, passive=True)
        return declared.message_count, declared.consumer_count
    except NotFound:
        return None
    finally:
        _close_quietly(channel)


def _declares(connection, queue):
    """Whether `queue` can be declared as it is (it has the right type)."""
    try:
        declare_checked(connection, [queue], "")
        return True
    except WrongQueueType:
        return False


def _recreate_one(connection, queue, kind):
    temporary = durable_queue(queue.name + TEMPORARY_SUFFIX, kind)
    declare_checked(connection, [temporary], kind)
    if _passive(connection, queue.name) is not None:
        _move(connection, queue.name, temporary.name)
        _delete_empty(connection, queue.name)
    declare_checked(connection, [queue], kind)
    moved = _move(connection, temporary.name, queue.name)
    _delete_empty(connection, temporary.name)
    return moved


def _delete_empty(connection, name):
    """Delete a queue that holds nothing and has no consumer. (A quorum
    queue refuses the if-unused flag, so this checks first.)"""
    messages, consumers = _passive(connection, name)
    if messages or consumers:
        raise QueuesInUse(f"{name} took {messages} message(s) or {consumers} consumer(s) meanwhile")
    channel = connection.channel()
    try:
        channel.queue_delete(name)
    finally:
        _close_quietly(channel)


def _move(connection, source, target):
    """Move every message from `source` to `target`, in order, each one
    confirmed by the broker before it is acked at the source."""
    channel = connection.channel()
    channel.confirm_select()
    moved = 0
    try:
        while (message := channel.basic_get(queue=source, no_ack=False)) is not None:
            channel.basic_publish_confirm(
                Message(message.body, **message.properties),
                exchange="",
                routing_key=target,
                confirm_timeout=CONFIRM_TIMEOUT_SECONDS,
            )
            channel.basic_ack(message.delivery_tag)
            moved += 1
    finally:
        _close_quietly(channel)
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m order_pipeline.queues", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "recreate", help="re-declare the project's queues with QUEUE_TYPE, keeping their messages"
    )
    command.add_argument("--config", default="config.yml")
    args = parser.parse_args(argv)

    from order_pipeline.config import load_config

    try:
        config = load_config(args.config)
        uri = amqp_uri(config)
        kind = queue_type(config)
        print(f"re-creating the queues on {mask_uri(uri)} as {kind} queues")
        count = recreate(
            uri, project_queues(config), kind, say=lambda line: print(line, flush=True)
        )
    except OSError as exc:
        print(f"Error: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 1
    except (StartupError, QueuesInUse) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the broker went away, or refused an operation
        print(f"Error: {mask_uri(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1
    print(f"done: {count} queue(s) re-created")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Re-create a deployment's queues when QUEUE_TYPE changes, keeping their
messages:

    python -m order_pipeline.commands.recreate_queues --config config.yml

(`make recreate-queues`). With the services stopped, for each queue of the
wrong type: move its messages to `<queue>.recreating` (each published with a
confirm before it is acked), delete it, declare it again with its bindings,
move the messages back, delete the temporary queue. It refuses to start while
any consumer is attached. Interrupted, it can be run again: a temporary queue
left over is emptied back into its queue.

It knows the project's queues from the contract's names
(`project_queues`); it imports no service.
"""

import argparse
import sys
from collections.abc import Callable

from amqp import Message
from amqp.exceptions import NotFound
from kombu import Queue
from nameko.rpc import RPC_QUEUE_TEMPLATE, get_rpc_exchange
from nameko.standalone.events import get_event_exchange

from order_contract import GENERATOR, ORDER_CREATED, ORDER_CREATED_QUEUE, PROCESSOR
from order_pipeline.broker import Broker, broker, connect, mask_uri
from order_pipeline.config import load_config
from order_pipeline.errors import StartupError
from order_pipeline.extensions.heartbeats import heartbeat_queue
from order_pipeline.extensions.reliable_events import retry_delays, retry_settings
from order_pipeline.queues import (
    WrongQueueType,
    close_quietly,
    dead_letter_queue_for,
    declare_checked,
    durable_queue,
    handler_queue,
    retry_queue,
)
from order_pipeline.settings import queue_type

TEMPORARY_SUFFIX = ".recreating"
CONFIRM_TIMEOUT_SECONDS = 10

# --- the project's queues ------------------------------------------------------


def project_queues(config: dict) -> list[Queue]:
    """Every durable queue the services declare under `config`, with its
    bindings. (RPC reply queues are left out: each is named for one
    container, and a stopped container's expires on its own.)"""
    kind = queue_type(config)
    rpc_exchange = get_rpc_exchange(config)
    queues = [
        durable_queue(
            RPC_QUEUE_TEMPLATE.format(service), kind, rpc_exchange, routing_key=f"{service}.*"
        )
        for service in (GENERATOR, PROCESSOR)
    ]
    queues.append(
        handler_queue(
            ORDER_CREATED_QUEUE,
            kind,
            get_event_exchange(GENERATOR, config),
            routing_key=ORDER_CREATED,
        )
    )
    retry = retry_settings(config)
    for delay in retry_delays(retry.first_delay_seconds, retry.max_delay_seconds):
        queues.append(retry_queue(ORDER_CREATED_QUEUE, delay, kind))
    queues.append(dead_letter_queue_for(ORDER_CREATED_QUEUE, kind))
    queues.append(heartbeat_queue(kind))
    return queues


# --- recreate ------------------------------------------------------------------


class QueuesInUse(Exception):
    """A consumer is attached to a queue that would be re-created."""


def recreate(
    target: Broker | str, queues: list[Queue], kind: str, say: Callable[[str], None]
) -> int:
    """Re-create each of `queues` that exists with other arguments than
    `kind` needs; returns how many were re-created."""
    with connect(target, connect_timeout=5) as connection:
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
        close_quietly(channel)


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
        close_quietly(channel)


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
        close_quietly(channel)
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m order_pipeline.commands.recreate_queues",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--config", default="config.yml")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        target = broker(config)
        kind = queue_type(config)
        print(f"re-creating the queues on {mask_uri(target.uri)} as {kind} queues")
        count = recreate(
            target, project_queues(config), kind, say=lambda line: print(line, flush=True)
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

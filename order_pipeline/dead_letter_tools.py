"""List, replay and discard the messages on a dead-letter queue.

A queue offers no way to read a message without taking it, so each operation
takes messages from the head of the queue with basic.get (unacknowledged),
acknowledges the ones it removes (replayed to the handler's queue, or
discarded), and gives the rest back with basic.reject(requeue), which puts
them back in their places: listing removes nothing and keeps the order.

While one operation holds messages, another would see a queue with holes in
it, so operations take turns. A turn is an exclusive queue `<queue>.lock`:
the broker lets one connection at a time declare it and deletes it with that
connection, so a processor that dies during its turn frees it. A call waits
up to LOCK_WAIT_SECONDS for its turn.

An operation looks only at the messages that were on the queue when its turn
began, at most MAX_DEAD_LETTERS_PER_CALL of them: a replayed message that
fails again joins the tail under a new id and is not taken again by the same
call, so a replay can never spin.

A replayed message is published to the handler's queue with publisher
confirms before its dead letter is acknowledged: a crash in between can only
duplicate it, and the handler is idempotent.
"""

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import eventlet
from amqp import Message
from amqp.exceptions import NotFound, ResourceLocked

from order_contract import MAX_BODY_CHARS, MAX_DEAD_LETTERS_PER_CALL, DeadLetter, DeadLettersBusy
from order_contract.dead_letters import DEAD_LETTER_ID
from order_pipeline.broker import Broker, connect
from order_pipeline.queues import (
    ATTEMPT_HEADER,
    DEAD_LETTER_ID_HEADER,
    DEAD_LETTERED_AT_HEADER,
    ERROR_HEADER,
)

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 3.0
LOCK_RETRY_SECONDS = 0.05
CONFIRM_TIMEOUT_SECONDS = 5
# Headers a dead letter carries that its replayed copy must not: a copy that
# fails again is dead-lettered under a new id; and the count of deliveries
# a quorum queue keeps in a header of its own.
DELIVERY_COUNT_HEADER = "x-delivery-count"
STAY_HEADERS = (DEAD_LETTER_ID_HEADER, DEAD_LETTERED_AT_HEADER, DELIVERY_COUNT_HEADER)


class DeadLetterQueue:
    """`DeadLetterQueue(broker, "q.dead-letter", "q", order_id_of)`:
    operations on the dead letters of the handler that consumes queue `q`.
    `order_id_of(body_text)` names the order a body is about, or None.

    A quorum queue (`queue_type="quorum"`) puts a requeued message at its
    tail, not back in its place: listing then takes every dead letter (up to
    MAX_DEAD_LETTERS_PER_CALL) and gives them all back in order, a full turn
    that leaves the order as it was."""

    def __init__(
        self,
        broker: Broker | str,
        queue_name: str,
        handler_queue_name: str,
        order_id_of: Callable[[str], int | None],
        queue_type: str = "classic",
    ):
        self.requeue_goes_to_tail = queue_type == "quorum"
        self.broker = broker
        self.queue_name = queue_name
        self.handler_queue_name = handler_queue_name
        self.lock_name = queue_name + ".lock"
        self.order_id_of = order_id_of

    def overview(self, limit: int) -> tuple[int, list[DeadLetter]]:
        """(how many dead letters there are, the first `limit` of them)."""
        with self._turn() as channel:
            count = self._count(channel)
            wanted = MAX_DEAD_LETTERS_PER_CALL if self.requeue_goes_to_tail else limit
            taken = self._take(channel, min(count, wanted))
            records = [self.describe(message) for message in taken[:limit]]
            self._give_back(channel, taken)
        return count, records

    def replay(self, ids: Iterable[str] | None = None) -> int:
        """Send the dead letters named by `ids` (all when None) back to the
        handler's queue; returns how many went."""
        with self._turn() as channel:
            # Replaying into a queue that is not there would lose messages.
            channel.queue_declare(queue=self.handler_queue_name, passive=True)
            return self._settle(channel, ids, self._replay_one)

    def discard(self, ids: Iterable[str]) -> int:
        """Remove the dead letters named by `ids` for good, logging each."""
        with self._turn() as channel:
            return self._settle(channel, ids, self._discard_one)

    def _settle(self, channel, ids, act):
        """`act` on each dead letter named (all when `ids` is None), then
        acknowledge it; give back the others."""
        wanted = None if ids is None else set(ids)
        if wanted is not None and not wanted:
            return 0
        done = 0
        kept = []
        for message in self._take(channel, min(self._count(channel), MAX_DEAD_LETTERS_PER_CALL)):
            record = self.describe(message)
            if wanted is None or record["id"] in wanted:
                act(channel, message, record)
                channel.basic_ack(message.delivery_tag)
                done += 1
            else:
                kept.append(message)
        self._give_back(channel, kept)
        return done

    def _replay_one(self, channel, message, record):
        properties = dict(message.properties)
        headers = dict(properties.pop("application_headers", None) or {})
        for name in STAY_HEADERS:
            headers.pop(name, None)
        channel.basic_publish_confirm(
            Message(message.body, application_headers=headers, **properties),
            exchange="",
            routing_key=self.handler_queue_name,
            confirm_timeout=CONFIRM_TIMEOUT_SECONDS,
        )
        log.info(
            "replayed dead letter %s (order %s, %d attempts so far) to %s",
            record["id"],
            record["order_id"],
            record["attempts"],
            self.handler_queue_name,
        )

    def _discard_one(self, channel, message, record):
        log.warning(
            "discarded dead letter %s for good: order %s, %d attempts, reason %r, body %.200r",
            record["id"],
            record["order_id"],
            record["attempts"],
            record["reason"],
            record["body"],
        )

    @contextmanager
    def _turn(self):
        """A channel on which this caller alone works on the queue."""
        with connect(self.broker, connect_timeout=5) as connection:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                channel = connection.channel()
                try:
                    channel.queue_declare(queue=self.lock_name, exclusive=True, auto_delete=True)
                    break
                except ResourceLocked:  # the broker has closed this channel
                    if time.monotonic() > deadline:
                        raise DeadLettersBusy(
                            f"{self.queue_name} is busy with another operation; try again"
                        ) from None
                    eventlet.sleep(LOCK_RETRY_SECONDS)
            # Leaving closes the connection, which gives back whatever is
            # still unacknowledged (after an error) and ends the turn.
            yield channel

    def _count(self, channel):
        try:
            return channel.queue_declare(queue=self.queue_name, passive=True).message_count
        except NotFound:
            return 0

    def _take(self, channel, count):
        taken = []
        for _ in range(count):
            message = channel.basic_get(queue=self.queue_name, no_ack=False)
            if message is None:
                break
            taken.append(message)
        return taken

    def _give_back(self, channel, messages):
        # RabbitMQ puts a requeued message back in its place in the queue.
        # (The frames go before the connection's close, on the same channel.)
        for message in messages:
            channel.basic_reject(message.delivery_tag, requeue=True)

    def describe(self, message) -> DeadLetter:
        headers = message.properties.get("application_headers") or {}
        body = message.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        dead_lettered_at = headers.get(DEAD_LETTERED_AT_HEADER)
        return {
            "id": dead_letter_id(headers, body),
            "order_id": self.order_id_of(text),
            "body": text[:MAX_BODY_CHARS],
            "reason": as_text(headers.get(ERROR_HEADER, "")),
            "dead_lettered_at": None if dead_lettered_at is None else as_text(dead_lettered_at),
            "attempts": attempts(headers),
        }


def as_text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def attempts(headers):
    try:
        return max(int(headers.get(ATTEMPT_HEADER, 0)), 0)
    except (TypeError, ValueError):
        return 0


def dead_letter_id(headers, body):
    """The id the message was dead-lettered with; for a message set aside
    before ids were given, a digest of its body and headers (identical
    copies then share an id, and are replayed or discarded together)."""
    given = as_text(headers.get(DEAD_LETTER_ID_HEADER, ""))
    if DEAD_LETTER_ID.match(given):
        return given
    digest = hashlib.sha256(body if isinstance(body, bytes) else str(body).encode("utf-8"))
    # A quorum queue counts deliveries in a header of its own, which each
    # listing raises: it is no part of the letter.
    kept = ((str(k), str(v)) for k, v in headers.items() if k != DELIVERY_COUNT_HEADER)
    digest.update(repr(sorted(kept)).encode("utf-8"))
    return digest.hexdigest()[:16]

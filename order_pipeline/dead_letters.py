"""Dead letters as a service keeps them: taken off the dead-letter queue into
records, and sent back to the handler's queue when replayed.

The dead-letter queue is only the way in. The event handler publishes there,
with confirms, what it cannot handle (order_pipeline.extensions.reliable_events),
and the broker parks there a message that went past the handler queue's
delivery limit (order_pipeline.queues); neither needs a database. A
`DeadLetterIntake` then consumes the queue and hands each batch, as
`DeadLetterRecord`s, to the service's `store(records)`, which keeps them in a
table keyed by the dead-letter id; only once `store` has returned True are
the messages acked. A crash in between delivers them again and the store
finds their ids already there: each dead letter is stored exactly once, and
none is lost. Reading, replaying and discarding then act on the table and
never touch the queue, so looking at dead letters costs no delivery (a
quorum queue counts every one, and RabbitMQ 4 drops a message after 20).

`publish_replays` sends stored messages back to the handler's queue, each
with a publisher confirm, for the service to mark replayed only after.
"""

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from amqp import Message
from kombu import Queue
from nameko.constants import HEADER_PREFIX

from order_contract.dead_letters import DEAD_LETTER_ID
from order_pipeline.broker import Broker, connect
from order_pipeline.failures import (
    MAX_MESSAGE_CHARS,
    MAX_TYPE_CHARS,
    Failure,
    encode_failures,
    read_failures,
)
from order_pipeline.queues import (
    ATTEMPT_HEADER,
    DEAD_LETTER_ID_HEADER,
    DEAD_LETTERED_AT_HEADER,
    ERROR_HEADER,
    FAILURES_HEADER,
    HANDLER_DELIVERY_LIMIT,
    declare_checked,
)
from order_pipeline.scrub import Scrubber
from order_pipeline.times import iso_z, parse_iso_z, utc_now
from order_pipeline.trace_context import TRACEPARENT, span_context_of, trace_id_of

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 1000
CONFIRM_TIMEOUT_SECONDS = 5
# Headers of one stay on the dead-letter queue, which a replayed copy must not
# carry (one that fails again is dead-lettered under a new id): the handler's,
# the count of deliveries a quorum queue keeps, and the broker's record of its
# own dead-lettering.
DELIVERY_COUNT_HEADER = "x-delivery-count"
STAY_HEADERS = frozenset(
    {
        DEAD_LETTER_ID_HEADER,
        DEAD_LETTERED_AT_HEADER,
        DELIVERY_COUNT_HEADER,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
TRACEPARENT_HEADER = f"{HEADER_PREFIX}.{TRACEPARENT}"
GAVE_UP = re.compile(r"^gave up after \d+ attempts: ")
ERROR_TYPE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*): (.*)$", re.DOTALL)


@dataclass(frozen=True)
class DeadLetterRecord:
    """One dead letter, as read off the queue."""

    id: str  # 16 hex digits: the handler's id for this stay, or a digest
    body: bytes
    content_type: str | None
    content_encoding: str | None
    headers: dict  # the headers a replay sends again (JSON-safe values)
    attempts: int
    reason: str  # why it was set aside, scrubbed (as `x-error` says it)
    error_type: str
    error_message: str  # scrubbed
    failing_frame: str | None
    trace_id: str | None
    dead_lettered_at: datetime  # naive UTC
    failures: tuple[Failure, ...]  # oldest first; empty if it came without

    @property
    def first_failed_at(self) -> datetime | None:
        return parse_iso_z(self.failures[0].at) if self.failures else None

    @property
    def last_failed_at(self) -> datetime | None:
        return parse_iso_z(self.failures[-1].at) if self.failures else None

    def failures_json(self) -> str:
        return encode_failures(list(self.failures))


def read_dead_letter(message, scrub: Scrubber, now: datetime | None = None) -> DeadLetterRecord:
    """The record of a message taken off a dead-letter queue (an
    amqp.Message). Never raises: whatever a producer put in the headers, the
    message is kept."""
    properties = message.properties or {}
    headers = properties.get("application_headers") or {}
    failures = tuple(
        Failure(f.at, f.error_type, scrub(f.message), f.frame)
        for f in read_failures(headers.get(FAILURES_HEADER))
    )
    reason = scrub(as_text(headers.get(ERROR_HEADER, "")))[:MAX_REASON_CHARS]
    if failures:
        error_type, error_message = failures[-1].error_type, failures[-1].message
    elif reason:
        error_type, error_message = split_reason(reason)
    else:
        error_type, error_message = broker_reason(headers)
        reason = f"{error_type}: {error_message}"
    kept = {str(name): json_safe(value) for name, value in headers.items()}
    for name in STAY_HEADERS:
        kept.pop(name, None)
    if ERROR_HEADER in kept:
        kept[ERROR_HEADER] = reason
    return DeadLetterRecord(
        id=dead_letter_id(headers, message.body),
        body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
        content_type=properties.get("content_type"),
        content_encoding=properties.get("content_encoding"),
        headers=kept,
        attempts=attempts(headers),
        reason=reason,
        error_type=error_type[:MAX_TYPE_CHARS],
        error_message=error_message[:MAX_MESSAGE_CHARS],
        failing_frame=failures[-1].frame if failures else None,
        trace_id=trace_id_of(
            span_context_of({TRACEPARENT: as_text(headers.get(TRACEPARENT_HEADER, ""))})
        ),
        dead_lettered_at=parse_iso_z(headers.get(DEAD_LETTERED_AT_HEADER)) or now or utc_now(),
        failures=failures,
    )


def split_reason(reason: str) -> tuple[str, str]:
    """("OrderNotFound", "order 42 does not exist") from an `x-error` of a
    message set aside before failures were recorded."""
    match = ERROR_TYPE.match(GAVE_UP.sub("", reason))
    return (match.group(1), match.group(2)) if match else ("", reason)


def broker_reason(headers: dict) -> tuple[str, str]:
    """The error of a message the broker dead-lettered, not the handler."""
    why = as_text(headers.get("x-first-death-reason", ""))
    if why == "delivery_limit":
        return (
            "DeliveryLimit",
            f"delivered more than {HANDLER_DELIVERY_LIMIT} times without being settled "
            "(each time a processor stopped or died holding it)",
        )
    return "BrokerDeadLettered", f"the broker set it aside ({why or 'no reason given'})"


def as_text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def json_safe(value):
    """A header value as JSON can hold it (AMQP tables also carry bytes,
    times and decimals)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, bytes):
        return as_text(value)
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def attempts(headers) -> int:
    try:
        return max(int(headers.get(ATTEMPT_HEADER, 0)), 0)
    except (TypeError, ValueError):
        return 0


def dead_letter_id(headers, body) -> str:
    """The id the handler dead-lettered the message with; for one set aside
    without (by the broker, or before ids were given), a digest of its body
    and headers (identical copies then share an id, and are kept once)."""
    given = as_text(headers.get(DEAD_LETTER_ID_HEADER, ""))
    if DEAD_LETTER_ID.match(given):
        return given
    digest = hashlib.sha256(body if isinstance(body, bytes) else str(body).encode("utf-8"))
    # The count of deliveries is no part of the letter: it grows each time
    # the message goes back to a quorum queue.
    kept = ((str(k), str(v)) for k, v in headers.items() if k != DELIVERY_COUNT_HEADER)
    digest.update(repr(sorted(kept)).encode("utf-8"))
    return digest.hexdigest()[:16]


# --- the way in ---------------------------------------------------------------------------


class DeadLetterIntake:
    """Moves what arrives on `queue` (declared with type `kind`) into
    `store(records) -> bool`, each message once (see the module's docstring).

    `run()` consumes until `stop()`: up to `batch_size` messages unacked at a
    time, handed over in one call as soon as they have arrived. While
    `store` returns False (its database is away) they stay unacked, in
    memory, and are offered again every `pause_seconds`: never given back
    to the queue, where each return would count as a delivery. A lost
    connection gives them back; they come again, and `store` finds those
    it already has.
    """

    IDLE_SECONDS = 1.0  # how often an idle loop checks heartbeats and stop()
    HEARTBEAT_SECONDS = 30

    def __init__(
        self,
        target: Broker | str,
        queue: Queue,
        kind: str,
        store: Callable[[list[DeadLetterRecord]], bool],
        scrub: Scrubber,
        batch_size: int = 100,
        pause_seconds: float = 1.0,
    ):
        self.target = target  # AMQP_URI and its TLS (order_pipeline.broker)
        self.queue = queue
        self.kind = kind
        self.store = store
        self.scrub = scrub
        self.batch_size = batch_size
        self.pause_seconds = pause_seconds
        self.stopping = False

    def stop(self) -> None:
        """Make `run()` return within IDLE_SECONDS, after offering what it
        holds to the store once more."""
        self.stopping = True

    def run(self) -> None:
        while not self.stopping:
            try:
                self._consume()
            except Exception as exc:  # the broker went away; nothing is lost
                if self.stopping:
                    break
                log.warning(
                    "taking dead letters off %s failed (%s: %s); again in %s s",
                    self.queue.name,
                    type(exc).__name__,
                    exc,
                    self.pause_seconds,
                )
                self._pause(self.pause_seconds)

    def _consume(self):
        with connect(
            self.target, connect_timeout=5, heartbeat=self.HEARTBEAT_SECONDS
        ) as connection:
            declare_checked(connection, [self.queue], self.kind)
            channel = connection.channel()
            channel.basic_qos(0, self.batch_size, False)
            held = []
            channel.basic_consume(queue=self.queue.name, callback=held.append)
            retry_at = 0.0
            while not self.stopping:
                self._drain(connection, held)
                if held and time.monotonic() >= retry_at:
                    if self._hand_over(channel, held):
                        held.clear()
                    else:
                        retry_at = time.monotonic() + self.pause_seconds
            if held and self._hand_over(channel, held):
                held.clear()

    def _drain(self, connection, held):
        """Wait up to IDLE_SECONDS for a message, then take whatever else
        has already arrived with it."""
        try:
            connection.drain_events(timeout=self.IDLE_SECONDS)
        except TimeoutError:
            connection.heartbeat_check()
            return
        while len(held) < self.batch_size:
            try:
                connection.drain_events(timeout=0)
            except TimeoutError:
                return

    def _hand_over(self, channel, held) -> bool:
        now = utc_now()
        records = [read_dead_letter(message, self.scrub, now) for message in held]
        try:
            stored = self.store(records)
        except Exception:
            log.exception("the dead-letter store failed; the dead letters wait, unacked")
            stored = False
        if stored:
            # Every message this channel holds, up to the last: all of `held`.
            channel.basic_ack(held[-1].delivery_tag, multiple=True)
        return stored

    def _pause(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))


# --- the way back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """A stored dead letter to send back."""

    id: str
    body: bytes
    headers: dict
    content_type: str | None
    content_encoding: str | None


class HandlerQueueMissing(Exception):
    """The handler's queue is not there: a replay would be lost."""


def publish_replays(target: Broker | str, queue_name: str, replays: list[Replay]) -> list[str]:
    """Publish each replay to queue `queue_name`, persistent, each with a
    publisher confirm; return the ids the broker confirmed, in order. After
    a failure the rest are not sent (and not returned); a failure before
    any was confirmed is raised."""
    confirmed = []
    with connect(target, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(queue=queue_name, passive=True)
        except Exception as exc:
            raise HandlerQueueMissing(f"no queue {queue_name} to replay to") from exc
        for replay in replays:
            message = Message(
                replay.body,
                application_headers=replay.headers,
                content_type=replay.content_type,
                content_encoding=replay.content_encoding,
                delivery_mode=2,
            )
            try:
                channel.basic_publish_confirm(
                    message,
                    exchange="",
                    routing_key=queue_name,
                    confirm_timeout=CONFIRM_TIMEOUT_SECONDS,
                )
            except Exception:
                if not confirmed:
                    raise
                log.warning(
                    "replaying stopped after %d of %d dead letters",
                    len(confirmed),
                    len(replays),
                    exc_info=True,
                )
                break
            confirmed.append(replay.id)
    return confirmed


def replay_headers(stored: str) -> dict:
    """The headers a stored dead letter is replayed with (JSON text)."""
    try:
        headers = json.loads(stored)
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in headers.items() if name not in STAY_HEADERS}

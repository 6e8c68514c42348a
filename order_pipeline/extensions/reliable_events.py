"""An event handler that neither loses a failed event nor spins on it.

nameko's EventHandler either acks a message whose handler raised (it is
lost) or, with `requeue_on_error=True`, puts it straight back at the head of
the queue, where it fails again thousands of times a second. This handler:

- acks on success;
- on `PermanentFailure` (a message that can never succeed: malformed, or about
  an order that does not exist) publishes the message to the dead-letter
  queue `<queue>.dead-letter` with the reason, the attempt count, a new id
  and the time in its headers, then acks (the service keeps what arrives
  there: `order_pipeline.dead_letters`);
- on any other error publishes it to a delay queue `<queue>.retry.<ms>ms`
  whose TTL sends it back to the handler's queue after 0.5 s, 1 s, 2 s, ...
  (capped at RETRY_MAX_DELAY_SECONDS), then acks; after RETRY_MAX_ATTEMPTS
  it is dead-lettered instead;
- dead-letters a body that cannot be decoded at all (not JSON, or a content
  type nameko does not accept), which kombu would otherwise log and drop.

The copy is published with publisher confirms before the original is acked,
so a crash in between can only duplicate a message, never lose it; the
handler must therefore be idempotent. Setting a message aside needs the
broker only, never a database: dead letters go to the queue even while the
database is down.

Every copy carries the message's failures so far (`x-failures`, see
`order_pipeline.failures`): each with its time, the exception's type, its
message scrubbed of hosts, addresses, credentials and SQL
(`order_pipeline.scrub`) and the failing frame; `x-error` is the last
reason, scrubbed too. The full text goes to this service's log only.

Whoever keeps count of the events set aside (the processor keeps them in a
table of its own, for the metrics) subscribes with
`add_set_aside_listener(listener)`: `listener(RETRIED or DEAD_LETTERED)` is
called once for each copy the broker has confirmed, before the original is
acked. This module knows nothing of where the counts go.
"""

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import eventlet
from nameko.amqp.publish import Publisher
from nameko.events import SERVICE_POOL, EventHandler

from order_contract import DEAD_LETTERED, RETRIED
from order_pipeline.broker import broker, check_broker
from order_pipeline.config import setting
from order_pipeline.extensions.resubscribing_consumer import ResubscribingQueueConsumer
from order_pipeline.failures import (
    encode_failures,
    failure_of,
    located,
    read_failures,
    with_failure,
)
from order_pipeline.queues import (
    ATTEMPT_HEADER,
    DEAD_LETTER_ID_HEADER,
    DEAD_LETTERED_AT_HEADER,
    ERROR_HEADER,
    FAILURES_HEADER,
    dead_letter_queue_for,
    declare_at_start,
    handler_queue,
    retry_queue,
)
from order_pipeline.scrub import Scrubber
from order_pipeline.settings import queue_type
from order_pipeline.times import iso_z, utc_now

log = logging.getLogger(__name__)

REQUEUE_PAUSE_SECONDS = 1
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class RetrySettings:
    first_delay_seconds: float
    max_delay_seconds: float
    max_attempts: int  # 0: never dead-letter a message for its attempts


def retry_settings(config: dict) -> RetrySettings:
    """RETRY_FIRST_DELAY_SECONDS, RETRY_MAX_DELAY_SECONDS, RETRY_MAX_ATTEMPTS."""
    first_delay = setting(config, "RETRY_FIRST_DELAY_SECONDS", float, minimum=0.01)
    return RetrySettings(
        first_delay_seconds=first_delay,
        max_delay_seconds=setting(config, "RETRY_MAX_DELAY_SECONDS", float, minimum=first_delay),
        max_attempts=setting(config, "RETRY_MAX_ATTEMPTS", int, minimum=0),
    )


class PermanentFailure(Exception):
    """Raised by a handler for a message that retrying cannot fix."""


class UndecodableBody(PermanentFailure):
    """The message body is not JSON, or of a content type not accepted."""


def retry_delays(first_delay, max_delay):
    """[first, 2*first, 4*first, ..., max_delay]: one delay queue each."""
    delays = []
    delay = first_delay
    while delay < max_delay:
        delays.append(delay)
        delay *= 2
    delays.append(max_delay)
    return delays


def delay_for_attempt(delays, attempt):
    """Delay before retry number `attempt` (1-based)."""
    return delays[min(attempt, len(delays)) - 1]


class DeadLetteringQueueConsumer(ResubscribingQueueConsumer):
    """The project's queue consumer, except that a message whose body cannot
    be decoded (not JSON, or a content type it does not accept) goes to its
    handler to be dead-lettered. kombu's default logs it and acks it: the
    event would be gone without a trace on any queue."""

    def get_consumers(self, consumer_cls, channel):
        def consumer_with_decode_errors(queues, **options):
            consumer = consumer_cls(queues=queues, **options)
            for provider in self.watched:
                if any(queue is provider.queue for queue in queues):
                    consumer.on_decode_error = partial(self._undecodable, provider)
            return consumer

        return super().get_consumers(consumer_with_decode_errors, channel)

    def _undecodable(self, provider, message, exc):
        # Off the consuming loop: setting it aside waits for the broker.
        self.container.spawn_managed_thread(partial(provider.handle_undecodable, message, exc))


class ReliableEventHandler(EventHandler):
    queue_consumer = DeadLetteringQueueConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("expected_exceptions", PermanentFailure)
        super().__init__(
            source_service,
            event_type,
            handler_type=SERVICE_POOL,
            reliable_delivery=True,
            requeue_on_error=False,
            **kwargs,
        )
        self._set_aside_listeners = []

    def add_set_aside_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(RETRIED or DEAD_LETTERED)` for every message this
        handler sets aside. It runs on the handler's settling path: it must
        return at once (queue the work, do not wait for I/O); an exception
        from it is logged and otherwise ignored."""
        self._set_aside_listeners.append(listener)

    def setup(self):
        config = self.container.config
        check_broker(config)
        super().setup()  # defines self.queue
        retry = retry_settings(config)
        self.max_attempts = retry.max_attempts
        self.delays = retry_delays(retry.first_delay_seconds, retry.max_delay_seconds)
        kind = queue_type(config)
        # nameko's EventHandler.setup has made self.queue a classic queue;
        # the consumer reads it only when it starts, so it is replaced here.
        self.queue = handler_queue(
            self.queue.name, kind, self.queue.exchange, routing_key=self.queue.routing_key
        )
        self.retry_queues = {
            delay: retry_queue(self.queue.name, delay, kind) for delay in self.delays
        }
        self.dead_letter_target = dead_letter_queue_for(self.queue.name, kind)
        declare_at_start(config, [self.queue, self.dead_letter_target, *self.retry_queues.values()])
        target = broker(config)
        self.publisher = Publisher(target.uri, use_confirms=True, **target.connection_options())
        self.scrub = Scrubber.for_config(config)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        self.settle(message, None if exc_info is None else exc_info[1])
        return result, exc_info

    def handle_undecodable(self, message, exc):
        """A body that can never be read: dead-letter it, then ack it."""
        error = UndecodableBody(f"cannot decode the body ({message.content_type}): {exc!r}")
        self.settle(message, located(error))

    def settle(self, message, error, pause_on_trouble=True):
        """Ack one message, after setting it aside if `error` failed it.

        Never raises (an exception in a result handler kills the whole
        service container). Returns False if the broker could not be told,
        after requeueing the message if possible (or it comes back on
        reconnection) and, unless asked not to, pausing so that a broker
        in trouble does not meet a hot loop.
        """
        try:
            if error is not None:
                self._tell_listeners(self._set_aside(message, error))
            self.queue_consumer.ack_message(message)
            return True
        except Exception:
            log.exception("could not settle a message; requeueing it")
            try:
                self.queue_consumer.requeue_message(message)
            except Exception:
                log.exception("could not requeue; the broker will redeliver it")
            if pause_on_trouble:
                eventlet.sleep(REQUEUE_PAUSE_SECONDS)
            return False

    def settle_done(self, messages):
        """Ack messages handled without error, together where the consumer
        can (ResubscribingQueueConsumer.ack_messages); as `settle`, never
        raises and returns False if the broker could not be told."""
        try:
            self.queue_consumer.ack_messages(messages)
            return True
        except Exception:
            log.exception("could not ack handled messages; requeueing them")
            # Those acked one by one before the failure are the broker's
            # already: naming their tags again would close the channel.
            for message in messages:
                try:
                    if not message.acknowledged:
                        self.queue_consumer.requeue_message(message)
                except Exception:
                    log.exception("could not requeue; the broker will redeliver it")
            return False

    def _tell_listeners(self, outcome):
        for listener in self._set_aside_listeners:
            try:
                listener(outcome)
            except Exception:
                log.exception("a set-aside listener failed; the message is settled regardless")

    def _set_aside(self, message, exc):
        """Publish the message's copy where it goes next; return RETRIED or
        DEAD_LETTERED."""
        attempt = _attempt(message) + 1
        failure = failure_of(exc, self.scrub)
        failures = with_failure(
            read_failures((message.headers or {}).get(FAILURES_HEADER)), failure
        )
        said = f"{type(exc).__name__}: {exc}"  # in full, for this service's log only
        if isinstance(exc, PermanentFailure):
            self._dead_letter(message, attempt, failure.reason, failures, said)
            return DEAD_LETTERED
        elif self.max_attempts and attempt >= self.max_attempts:
            given_up = f"gave up after {attempt} attempts: "
            self._dead_letter(
                message, attempt, given_up + failure.reason, failures, given_up + said
            )
            return DEAD_LETTERED
        else:
            delay = delay_for_attempt(self.delays, attempt)
            log.warning(
                "%s failed (attempt %d: %s); retrying in %s s",
                self.queue.name,
                attempt,
                said,
                delay,
            )
            self._republish(message, self.retry_queues[delay], attempt, failure.reason, failures)
            return RETRIED

    def _dead_letter(self, message, attempt, reason, failures, said):
        log.error(
            "%s: message set aside on %s: %s; payload %.200r",
            self.queue.name,
            self.dead_letter_target.name,
            said,
            message.body,
        )
        self._republish(
            message,
            self.dead_letter_target,
            attempt,
            reason,
            failures,
            {
                DEAD_LETTER_ID_HEADER: new_dead_letter_id(),
                DEAD_LETTERED_AT_HEADER: iso_z(utc_now()),
            },
        )

    def _republish(self, message, queue, attempt, reason, failures, extra_headers=None):
        headers = dict(message.headers or {})
        headers.update(
            {
                ATTEMPT_HEADER: attempt,
                ERROR_HEADER: reason[:MAX_REASON_CHARS],
                FAILURES_HEADER: encode_failures(failures),
                **(extra_headers or {}),
            }
        )
        self.publisher.publish(
            message.body,
            exchange="",
            routing_key=queue.name,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            declare=[queue],
        )


def new_dead_letter_id():
    """16 lowercase hex digits (64 random bits): the contract's id format."""
    return secrets.token_hex(8)


def _attempt(message):
    try:
        return max(int((message.headers or {}).get(ATTEMPT_HEADER, 0)), 0)
    except (TypeError, ValueError):
        return 0

"""Handle events in batches, with the same no-loss rules per event.

One worker per event spends most of its time on per-call overhead: an RPC
round trip and a database commit for every order. `BatchEventHandler` hands
the service method a list of payloads instead, so that one RPC and one
transaction serve up to EVENT_BATCH_SIZE events.

Batches form by themselves, without a timer: events that arrive while
fewer than EVENT_BATCHES_IN_FLIGHT batches are running are handled at once,
with whatever came in with them (so latency stays low at low load); events
that arrive while the workers are busy wait and go together in the next
batch (large batches under load, so throughput grows with the backlog).
"Came in with them": nameko's consumer hands over the messages already read
off the socket one after the other without yielding, so a batch started
once it yields (not at the first message) takes every event of a burst,
such as the generator's outbox publishing several at once, instead of the
first alone and the rest next. The start runs in a plain greenthread:
`_start_batches` handles a container being killed; after any other error
the events stay waiting, unacked, for the next start.

The method returns one outcome per payload, in order: None when that event
is done, or the exception that failed it. Each event is then settled as
`ReliableEventHandler` settles one: acked, retried after a delay, or
dead-lettered. If the method raises, every event in the batch is retried.
"""

from dataclasses import dataclass
from functools import partial

import eventlet
from nameko.exceptions import ContainerBeingKilled

from order_contract import MAX_IDS_PER_CALL
from order_pipeline.config import setting
from order_pipeline.errors import StartupError
from order_pipeline.extensions.reliable_events import (
    REQUEUE_PAUSE_SECONDS,
    DeadLetteringQueueConsumer,
    ReliableEventHandler,
)
from order_pipeline.extensions.tracing import BATCH_TRACEPARENTS
from order_pipeline.trace_context import TRACE_KEYS, TRACEPARENT


@dataclass(frozen=True)
class BatchSettings:
    size: int  # events per batch
    in_flight: int  # batches handled at once per processor


def batch_settings(config: dict) -> BatchSettings:
    """EVENT_BATCH_SIZE and EVENT_BATCHES_IN_FLIGHT."""
    settings = BatchSettings(
        size=setting(config, "EVENT_BATCH_SIZE", int, minimum=1),
        in_flight=setting(config, "EVENT_BATCHES_IN_FLIGHT", int, minimum=1),
    )
    # A batch is confirmed with one get_orders call.
    if settings.size > MAX_IDS_PER_CALL:
        raise StartupError(f"EVENT_BATCH_SIZE must not exceed {MAX_IDS_PER_CALL}")
    return settings


class BatchQueueConsumer(DeadLetteringQueueConsumer):
    """nameko's consumer sets prefetch to max_workers (10), which would cap
    a batch at 10 events; this one prefetches enough for every batch in
    flight plus the next."""

    @property
    def prefetch_count(self):
        batches = batch_settings(self.container.config)
        return batches.size * (batches.in_flight + 1)


class BatchEventHandler(ReliableEventHandler):
    queue_consumer = BatchQueueConsumer()

    def setup(self):
        super().setup()
        batches = batch_settings(self.container.config)
        self.batch_size = batches.size
        self.max_batches = batches.in_flight
        if self.max_batches >= self.container.max_workers:
            # Leave workers for the service's other entrypoints (its RPC).
            self.max_batches = max(1, self.container.max_workers - 1)
        self._waiting = []  # (payload, message) not yet in a batch
        self._in_flight = 0
        self._start_due = False  # a start is scheduled for the next yield
        self._stopping = False

    @property
    def events_waiting(self) -> int:
        """Events delivered to this handler and not yet in a batch (its
        heartbeat reports them: order_pipeline.extensions.heartbeats)."""
        return len(self._waiting)

    def stop(self):
        # Events not yet in a batch go back to the queue at once rather
        # than start new work (whose RPC calls may wait for a generator
        # that is stopping too).
        self._stopping = True
        self._requeue_waiting()
        super().stop()

    def handle_message(self, body, message):
        self._waiting.append((body, message))
        if not self._start_due:
            self._start_due = True
            eventlet.spawn_n(self._start_when_due)

    def _start_when_due(self):
        self._start_due = False
        self._start_batches()

    def _requeue_waiting(self):
        waiting, self._waiting = self._waiting, []
        for _, message in waiting:
            self.queue_consumer.requeue_message(message)

    def _start_batches(self):
        if self._stopping:
            self._requeue_waiting()
            return
        while self._waiting and self._in_flight < self.max_batches:
            batch = self._waiting[: self.batch_size]
            del self._waiting[: self.batch_size]
            payloads = [payload for payload, _ in batch]
            messages = [message for _, message in batch]
            self._in_flight += 1
            try:
                self.container.spawn_worker(
                    self,
                    (payloads,),
                    {},
                    context_data=self._batch_context(messages),
                    handle_result=partial(self._settle_batch, messages),
                )
            except ContainerBeingKilled:
                self._in_flight -= 1
                for message in messages:
                    self.queue_consumer.requeue_message(message)

    def _batch_context(self, messages):
        """The worker's context data: the first event's trace context (its
        trace is the batch's), and every event's traceparent, in order, for
        order_pipeline.extensions.tracing to link to. Nothing else of the events'
        headers: the worker sends its context data on with its RPC calls."""
        headers = [self.unpack_message_headers(message) for message in messages]
        context_data = {key: headers[0][key] for key in TRACE_KEYS if key in headers[0]}
        context_data[BATCH_TRACEPARENTS] = [each.get(TRACEPARENT) or "" for each in headers]
        return context_data

    def _settle_batch(self, messages, worker_ctx, result=None, exc_info=None):
        try:
            outcomes = _outcomes(messages, result, exc_info)
            done = [message for message, error in zip(messages, outcomes) if error is None]
            settled = [
                self.settle(message, error, pause_on_trouble=False)
                for message, error in zip(messages, outcomes)
                if error is not None
            ]
            # The events handled: one ack for all of them, after those set
            # aside (each acked once its copy is published).
            settled.append(self.settle_done(done))
            if not all(settled):
                eventlet.sleep(REQUEUE_PAUSE_SECONDS)  # once per batch, not a hot loop
        finally:
            self._in_flight -= 1
            self._start_batches()
        return result, exc_info


def _outcomes(messages, result, exc_info):
    """One error-or-None per message, whatever the method did."""
    if exc_info is not None:
        return [exc_info[1]] * len(messages)
    if not isinstance(result, (list, tuple)) or len(result) != len(messages):
        error = TypeError(f"a batch handler must return one outcome per event, got {result!r:.100}")
        return [error] * len(messages)
    return list(result)


batch_event_handler = BatchEventHandler.decorator

"""order_processor's price source, chosen by config, its dead letters (moved
off the queue into its table, and sent back), and the count of the events
its handler sets aside."""

import json
import logging
import time
from collections import Counter
from functools import partial

from eventlet.queue import Empty, Full, LightQueue
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from order_contract import ORDER_CREATED_QUEUE, RETRIED, InvalidPayload, OrderCreated
from order_pipeline.broker import broker
from order_pipeline.database import for_services
from order_pipeline.dead_letters import DeadLetterIntake, publish_replays
from order_pipeline.errors import StartupError
from order_pipeline.extensions.heartbeats import instance_of
from order_pipeline.extensions.reliable_events import ReliableEventHandler
from order_pipeline.queues import dead_letter_queue_for
from order_pipeline.scrub import Scrubber
from order_pipeline.settings import db_uri, queue_type
from order_pipeline.transactions import (
    CommitOutcomeUnknown,
    Sessions,
    TransactionFailed,
    run_transaction,
)
from processor_service import dead_letters, store
from processor_service.monitoring import handling_shard
from processor_service.pricing import HttpPriceFeed, SimulatedMarket
from processor_service.settings import PriceSettings, price_settings

log = logging.getLogger(__name__)


def price_source(settings: PriceSettings):
    """An object with `unit_price() -> Decimal`, as the settings describe."""
    if settings.source == "http":
        return HttpPriceFeed(settings.feed_url, timeout=settings.feed_timeout_seconds)
    try:
        return SimulatedMarket(
            base=settings.base, max_step=settings.max_step, band=settings.band, seed=settings.seed
        )
    except ValueError as exc:
        raise StartupError(f"PRICE_BASE/PRICE_MAX_STEP/PRICE_BAND: {exc}") from None


class PriceSource(DependencyProvider):
    """Injects the price source, shared by workers (the simulated walk is
    one market, not one per worker)."""

    def setup(self):
        self.source = price_source(price_settings(self.container.config))

    def get_dependency(self, worker_ctx):
        return self.source


def order_id_of(body_text: str) -> int | None:
    """The order a dead-lettered body is about, if it is a readable
    OrderCreated payload."""
    try:
        return OrderCreated.from_payload(json.loads(body_text)).order_id
    except (ValueError, RecursionError, InvalidPayload):
        return None


# The processor's own connections to the database, apart from its workers':
# one each is enough.
OWN_ENGINE_OPTIONS = {
    "pool_size": 1,
    "max_overflow": 0,
    "pool_pre_ping": True,
    "connect_args": {"connect_timeout": 5},
}


class DeadLetterMover(DependencyProvider):
    """Moves each dead letter off the OrderCreated handler's dead-letter
    queue into the dead_letters table as it arrives (a DeadLetterIntake in
    a greenthread of the container, with a database connection of its own),
    acking it only once it is stored. During a database outage they wait on
    the queue; the handler itself never needs the database to set one
    aside. Every processor runs one; a dead letter goes to one of them.
    Injects nothing."""

    BATCH_SIZE = 100

    def setup(self):
        config = self.container.config
        self.engine = create_engine(db_uri(config), **for_services(OWN_ENGINE_OPTIONS, config))
        sessions = Sessions.of_engine(self.engine)
        kind = queue_type(config)
        self.intake = DeadLetterIntake(
            broker(config),
            dead_letter_queue_for(ORDER_CREATED_QUEUE, kind),
            kind,
            partial(self._store, sessions),
            Scrubber.for_config(config),
            batch_size=self.BATCH_SIZE,
        )
        self.thread = None

    def start(self):
        self.thread = self.container.spawn_managed_thread(self.intake.run)

    def stop(self):
        self.intake.stop()
        if self.thread is not None:
            self.thread.wait()
        self.engine.dispose()

    def kill(self):
        self.intake.stop()
        self.engine.dispose()

    @staticmethod
    def _store(sessions, records):
        try:
            dead_letters.store_records(sessions, records, order_id_of)
            return True
        except (SQLAlchemyError, TransactionFailed) as exc:
            log.warning(
                "could not store %d dead letter(s) yet (%s); they wait on the queue",
                len(records),
                type(exc).__name__,
            )
            return False


class ReplayPublisher(DependencyProvider):
    """Injects `publish(replays) -> ids confirmed`: dead letters sent back to
    the OrderCreated handler's queue (order_pipeline.dead_letters.publish_replays)."""

    def setup(self):
        self.publish = partial(publish_replays, broker(self.container.config), ORDER_CREATED_QUEUE)

    def get_dependency(self, worker_ctx):
        return self.publish


class SetAsideCounts(DependencyProvider):
    """Counts, in events_set_aside, the OrderCreated events the service's
    handler sets aside: retried (sent to a delay queue) or dead-lettered.

    It subscribes to every ReliableEventHandler of its service
    (`add_set_aside_listener`), which tells it of each copy the broker has
    confirmed. A thread of its own adds them to the table at once, all that
    arrived meanwhile in one statement, so settling a message never waits
    for the database: during a database outage, which is when events are
    retried, the counts wait in memory and are written when it answers
    again. Each processor adds to the same rows, so the figures are the
    pipeline's. What is lost: counts not yet written when the process is
    killed (normally a few milliseconds' worth; during a database outage,
    all of the outage's). A graceful stop writes them first.

    Counting in the processor's own transaction instead would miss exactly
    the failures that matter: a batch that fails because the generator or
    the database is away has no transaction, and only the handler knows
    whether a failure is retried or parked (attempts, RETRY_MAX_ATTEMPTS).

    The retries are also added, by the second they happened in, to
    handling_seconds in the same transaction: the timing's retries over the
    last 10 minutes (processor_service.monitoring).
    """

    RETRY_SECONDS = 1.0

    def setup(self):
        self.pending = Counter()
        self.retries_by_second = Counter()
        self.shard = handling_shard(instance_of(self.container).instance_id)
        self.wake = LightQueue(maxsize=1)
        self.stopping = False
        self.writer = None
        config = self.container.config
        self.engine = create_engine(db_uri(config), **for_services(OWN_ENGINE_OPTIONS, config))
        self.sessions = Sessions.of_engine(self.engine)
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, ReliableEventHandler):
                entrypoint.add_set_aside_listener(self.record)

    def start(self):
        self.writer = self.container.spawn_managed_thread(self._write_until_stopped)

    def stop(self):
        # The container stops this only after its workers have finished,
        # so every set-aside of this process has been recorded by now.
        self.stopping = True
        self._signal()
        if self.writer is not None:
            self.writer.wait()
        if not self.write_pending():
            log.error("events set aside but not counted, lost at stop: %s", dict(self.pending))
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def record(self, outcome: str) -> None:
        """The set-aside listener: count one event, write it soon."""
        self.pending[outcome] += 1
        if outcome == RETRIED:
            self.retries_by_second[int(time.time())] += 1
        self._signal()

    def _signal(self):
        try:
            self.wake.put_nowait(None)
        except Full:  # a write is already due; it takes this count too
            pass

    def _write_until_stopped(self):
        while True:
            self.wake.get()
            if self.stopping:
                return
            if not self.write_pending():
                self._pause()
                self._signal()  # then try again

    def _pause(self):
        """RETRY_SECONDS, or less if the service stops meanwhile."""
        deadline = time.monotonic() + self.RETRY_SECONDS
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            try:
                self.wake.get(timeout=left)
            except Empty:
                pass

    def write_pending(self) -> bool:
        """Add the counts waiting to the table; False (keeping them for the
        next try) if the database did not take them."""
        counts, self.pending = self.pending, Counter()
        retries, self.retries_by_second = self.retries_by_second, Counter()
        if not counts:
            return True

        def write(session):
            store.add_set_asides(session, counts)
            if retries:
                by_second = {second: {"retries": n} for second, n in retries.items()}
                store.add_handling(session, self.shard, by_second)

        try:
            run_transaction(self.sessions, write, attempts=2)
            return True
        except CommitOutcomeUnknown:
            # Adding them again might count them twice: an undercount (these
            # figures only) is the smaller harm.
            log.error("counts of events set aside may be lost (commit outcome unknown): %s", counts)
            return True
        except (SQLAlchemyError, TransactionFailed) as exc:
            self.pending.update(counts)
            self.retries_by_second.update(retries)
            log.warning(
                "could not count %s events set aside yet (%s); trying again",
                dict(counts),
                type(exc).__name__,
            )
            return False

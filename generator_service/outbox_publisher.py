"""OrderCreated events go out from a background greenthread, off the path
that creates orders.

A timer tick or a create_order call commits the order with its outbox row,
calls `wake()` and returns: it never waits on the broker. The publisher then
publishes whatever waits in the outbox, in batches (one broker connection,
its lock taken once per batch), and deletes the rows whose events the broker
confirmed and routed (generation.publish_outbox). The periodic relay runs
through the same publisher and connection (`relay()`).
"""

import logging

from eventlet.event import Event
from nameko.extensions import DependencyProvider

from generator_service import generation
from generator_service.models import Base
from generator_service.settings import outbox_sweep_seconds
from order_pipeline.database import ENGINE_OPTIONS
from order_pipeline.extensions.checked_database import CheckedDatabase
from order_pipeline.extensions.event_publisher import RoutedEventPublisher
from order_pipeline.transactions import Sessions

log = logging.getLogger(__name__)


class OutboxPublisher:
    """Publishes the outbox each time it is woken, from the one greenthread
    that runs `run()`.

    Wake-ups that come while a pass is under way make one more pass. A pass
    that leaves rows behind (broker away, no queue to route to yet, database
    down) is followed by a pause of `pause_seconds` whatever the wake-ups,
    so an outage costs one attempt per pause rather than one per order; the
    next attempt comes with the next wake-up after it, and the relay retries
    the rows meanwhile in any case. No order id is held in memory: the
    outbox table is the only list. `stop()` ends `run()` after a last pass
    (bounded by the publisher's connect and confirm timeouts); what that
    cannot publish stays in the outbox for the relay of this or another
    instance.
    """

    def __init__(self, db, publish, pause_seconds: float):
        self.db = db
        self.publish = publish
        self.pause_seconds = pause_seconds
        self._woken = Event()
        self._stopping = Event()

    def wake(self) -> None:
        """An order has committed: publish the outbox soon."""
        if not self._woken.ready():
            self._woken.send(True)

    def relay(self) -> int:
        """The safety net: publish events that have waited longer than
        generation.OUTBOX_GRACE. Returns how many were published."""
        return generation.relay_outbox(self.db, self.publish)

    def run(self) -> None:
        while True:
            self._woken.wait()
            # A fresh event before the pass: a wake-up during it is kept.
            self._woken = Event()
            if self._stopping.ready():
                break
            if not self.publish_pending():
                self._stopping.wait(self.pause_seconds)
        self.publish_pending()

    def stop(self) -> None:
        """Make `run()` return after one last pass."""
        if not self._stopping.ready():
            self._stopping.send(True)
        self.wake()

    def publish_pending(self) -> bool:
        """Publish every event in the outbox; False if some are left."""
        try:
            while True:
                taken, published = generation.publish_outbox(self.db, self.publish)
                if published < taken:
                    return False
                if taken < generation.OUTBOX_BATCH:
                    return True
        except Exception:  # the rows stay in the outbox; nothing is lost
            log.warning(
                "publishing the outbox failed; its events wait there "
                "(next attempt in %s s at the earliest)",
                self.pause_seconds,
                exc_info=True,
            )
            return False


class BackgroundOutboxPublisher(DependencyProvider):
    """`outbox = BackgroundOutboxPublisher()`: the worker gets the
    OutboxPublisher, which runs in a greenthread of the container from start
    to stop, pausing OUTBOX_SWEEP_SECONDS after a failed pass.

    Its broker connection and database engine are its own, and it drives
    their life cycle itself: nameko stops a service's dependencies all at
    once, and the last pass must come after the workers have finished (so no
    order commits after it) but before the connections close.
    """

    thread = broker = database = None

    def setup(self):
        container = self.container.interface  # the container itself, not a weak proxy
        broker = RoutedEventPublisher().bind(container, "outbox_broker")
        broker.setup()
        self.broker = broker
        database = CheckedDatabase(
            Base, engine_options={**ENGINE_OPTIONS, "isolation_level": generation.READ_COMMITTED}
        ).bind(container, "outbox_database")
        database.setup()
        self.database = database
        pause = outbox_sweep_seconds(container.config)
        self.outbox = OutboxPublisher(
            Sessions(lambda: database.Session(close_on_exit=True)), broker.publish, pause
        )

    def start(self):
        self.thread = self.container.spawn_managed_thread(
            self.outbox.run, identifier="outbox publisher"
        )

    def stop(self):
        # nameko stops dependencies once every worker has finished.
        self.outbox.stop()
        if self.thread is not None:
            self.thread.wait()
        self.broker.stop()
        self.database.stop()

    def kill(self):
        if self.thread is not None:
            self.thread.kill()
        for extension in (self.broker, self.database):
            if extension is not None:  # set up
                extension.kill()

    def get_dependency(self, worker_ctx):
        return self.outbox

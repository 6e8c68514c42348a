"""What order_generator does, as plain functions of a database session
factory (`db.get_session`) and an event publisher, so they test without
nameko.

Creating an order (a timer tick or `create_order`) commits the order with
its outbox row and touches nothing else: the broker is not on that path, so
a slow, hung or absent broker never delays or skips an order. The outbox is
then emptied by `publish_outbox`, which the service's background publisher
(generator_service.outbox_publisher) runs as soon as an order commits, and
by `relay_outbox` every OUTBOX_SWEEP_SECONDS, the safety net for rows left
by a broker outage, by events with no processor queue to route them to yet,
or by an instance that died between commit and publish.

Both take outbox rows under a row lock (SKIP LOCKED), publish their
OrderCreated events, and delete the rows whose events the broker confirmed
and routed, in the same transaction; so no two publishers send the same row
at once, and an order is never left without either its event or its outbox
row. If that delete fails after the publish, the event goes out again later:
the processor stores an order once whatever it is sent.
"""

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy.exc import IntegrityError

from generator_service import store
from generator_service.orders import order_as_dict, random_quantity, status_as_dict
from generator_service.settings import generator_settings
from order_contract import (
    IDEMPOTENCY_WINDOW,
    MAX_ORDERS_PER_CALL,
    ORDER_CREATED,
    OrderCreated,
    validate_idempotency_key,
    validate_quantities,
    validate_quantity,
)
from order_pipeline.times import utc_now
from order_pipeline.trace_context import TRACEPARENT, current_traceparent, tracer
from order_pipeline.transactions import is_duplicate_key, run_transaction

log = logging.getLogger(__name__)

# The relay leaves young rows to the background publisher, which takes them
# as soon as they commit.
OUTBOX_GRACE = timedelta(seconds=2)
OUTBOX_BATCH = 500
# Expired idempotency keys deleted per relay pass, at most.
EXPIRED_KEYS_BATCH = 1000
# A late tick makes up for the intervals it missed, up to this long: the
# timer keeps its rate when a tick takes longer than a short interval, and a
# generator that was stopped or stalled does not make up for all of it.
CATCH_UP_SECONDS = 1.0


def prepare_state(db, config):
    """At start-up: create the generator_state row on a fresh system, and
    say whether generation is on, since that survives restarts."""
    settings = generator_settings(config)

    def seed(session):
        store.seed_state(session, settings.generate_on_first_start)
        return store.read_state(session).running

    # Seeding inserts what is missing only: running it twice does no harm.
    running = run_transaction(db, seed, name="seeding the state", retry_unknown_commit=True)
    if running:
        log.info("order generation is on: one order every %s s", settings.interval_seconds)
    else:
        log.info(
            "order generation is off (the state is kept across restarts); start it "
            "with POST /start and the bearer token, or "
            "n.rpc.order_generator.start() in nameko shell"
        )


def set_running(db, running, settings):
    """Turn generation on or off; returns the status. Setting the flag
    twice does no harm, so a lost commit is simply set again."""

    def work(session):
        store.set_running(session, running)
        return status(session, settings)

    answer = run_transaction(db, work, name="setting on/off", retry_unknown_commit=True)
    log.info("order generation %s", "started" if running else "stopped")
    return answer


def status(session, settings):
    return status_as_dict(store.read_state(session), store.orders_created(session), settings)


def orders_created_by(created_at, create_token):
    """The `recover` of a create transaction: its orders if it was applied,
    else None (see order_pipeline.transactions)."""

    def find(session):
        rows = store.find_created_orders(session, created_at, create_token)
        return [order_as_dict(row) for row in rows] or None

    return find


def catch_up_intervals(settings) -> int:
    """How many intervals one tick may stand for (store.claim_tick): up to
    CATCH_UP_SECONDS of them, at most MAX_ORDERS_PER_CALL orders in all."""
    by_time = int(CATCH_UP_SECONDS / settings.interval_seconds)
    by_size = MAX_ORDERS_PER_CALL // settings.orders_per_tick
    return max(1, min(by_time, by_size))


def generate_tick(db, settings, rng):
    """Create this tick's orders if generation is on and the tick is ours:
    ORDERS_PER_TICK for each interval the tick stands for (more than one
    when ticks fall behind a short interval); returns them, or [] for no
    tick."""
    created_at, token = utc_now(), store.new_create_token()
    most_intervals = catch_up_intervals(settings)

    def work(session):
        intervals = store.claim_tick(session, settings.interval_seconds, most_intervals)
        if not intervals:
            return []
        count = intervals * settings.orders_per_tick
        quantities = [random_quantity(rng, settings) for _ in range(count)]
        traceparents = [current_traceparent()] * count
        rows = store.add_orders(session, quantities, created_at, traceparents, token)
        return [order_as_dict(row) for row in rows]

    with tracer().start_as_current_span("commit order"):
        return run_transaction(
            db, work, name="a tick", recover=orders_created_by(created_at, token)
        )


def create_order(db, quantity, share=None):
    """Create one order now, whatever the on/off state.

    With `share` (an order_pipeline.extensions.shared_batches submit), concurrent calls
    share one transaction: a group commit. The quantity is checked first,
    so a bad one fails alone; each call's order keeps its own trace."""
    quantity = validate_quantity(quantity)
    with tracer().start_as_current_span("commit order"):
        wanted = (quantity, current_traceparent())
        if share is None:
            return _create(db, [wanted])[0]
        return share(partial(_create, db), wanted)


def create_orders(db, quantities):
    """Create one order per quantity now, all or none, in one transaction
    (at most MAX_ORDERS_PER_CALL), whatever the on/off state."""
    quantities = validate_quantities(quantities)
    with tracer().start_as_current_span("commit orders"):
        traceparent = current_traceparent()
        return _create(db, [(quantity, traceparent) for quantity in quantities])


def _create(db, wanted):
    """Store one order per (quantity, traceparent) in one transaction, run
    again whole on a deadlock, certification conflict or lost connection.
    After a connection lost during COMMIT, the transaction's token says
    whether its orders were stored, so none is created twice."""
    created_at, token = utc_now(), store.new_create_token()
    quantities = [quantity for quantity, _ in wanted]
    traceparents = [traceparent for _, traceparent in wanted]

    def work(session):
        rows = store.add_orders(session, quantities, created_at, traceparents, token)
        return [order_as_dict(row) for row in rows]

    return run_transaction(
        db, work, name="creating orders", recover=orders_created_by(created_at, token)
    )


def create_order_once(db, quantity, key, now=None):
    """Create one order for idempotency key `key`, unless the key already
    names an order stored within IDEMPOTENCY_WINDOW: then that order, not a
    second. Returns (order, created). The quantity of a repeat is not
    compared: the key alone names the order.

    Two calls with the same new key at once: the key's primary key makes the
    second wait for the first to commit, then fail, and roll back its order;
    it then reads the first's order. (On Galera, through two nodes, the
    second fails certification instead, runs again and finds the key.)
    """
    validate_quantity(quantity)
    validate_idempotency_key(key)
    now = now or utc_now()
    token = store.new_create_token()

    def work(session):
        found = store.find_keyed_order(session, key)
        if found is not None:
            order, stored_at = found
            if stored_at >= now - IDEMPOTENCY_WINDOW:
                return order_as_dict(order), False
            store.forget_key(session, key)  # expired: the key is free again
        with tracer().start_as_current_span("commit order"):
            order = store.add_keyed_order(session, quantity, key, now, current_traceparent(), token)
            return order_as_dict(order), True

    def recover(session):
        orders = orders_created_by(now, token)(session)
        return None if orders is None else (orders[0], True)

    try:
        return run_transaction(db, work, name="creating a keyed order", recover=recover)
    except IntegrityError as error:
        if not is_duplicate_key(error):
            raise

    def read(session):
        order, _ = store.find_keyed_order(session, key)
        return order_as_dict(order), False

    return run_transaction(db, read, name="reading a keyed order", retry_unknown_commit=True)


def forget_expired_keys(db, now=None):
    """Delete idempotency keys older than IDEMPOTENCY_WINDOW (a batch at
    most); return how many."""
    cutoff = (now or utc_now()) - IDEMPOTENCY_WINDOW

    def work(session):
        return store.forget_expired_keys(session, cutoff, EXPIRED_KEYS_BATCH)

    return run_transaction(db, work, name="forgetting expired keys", retry_unknown_commit=True)


def publish_order_created(publish, rows):
    """Publish OrderCreated for each (order id, traceparent) outbox row, in
    the order's trace; return the ids the broker routed."""
    order_ids = [order_id for order_id, _ in rows]
    routed = publish(
        ORDER_CREATED,
        [OrderCreated(i).to_payload() for i in order_ids],
        [{TRACEPARENT: traceparent} if traceparent else {} for _, traceparent in rows],
    )
    return [order_id for order_id, ok in zip(order_ids, routed) if ok]


READ_COMMITTED = "READ COMMITTED"


def publish_outbox(db, publish, created_before=None, limit=OUTBOX_BATCH):
    """Publish the events of up to `limit` orders waiting in the outbox (only
    those created before `created_before`, if given) and delete the rows the
    broker routed.

    Returns (rows taken, events published): fewer published than taken means
    the broker is away or has nowhere to route them yet.

    A pass that fails (deadlock, certification conflict, lost connection)
    runs again whole: its rows are still in the outbox unless another
    publisher's delete won, and what it published goes out again, which the
    processor absorbs. On Galera, SKIP LOCKED skips rows locked on this node
    only, so publishers on two nodes can take the same rows: the second
    commit fails certification (1213) and its pass runs again.
    """

    def work(session):
        # Under READ COMMITTED the locks are on the rows taken only, not on
        # the gaps next to them: new orders' outbox inserts do not wait for
        # this publishing. The background publisher's engine runs at that
        # level already (no SET before and after each pass); others ask.
        if session.get_bind().dialect.default_isolation_level != READ_COMMITTED:
            session.connection(execution_options={"isolation_level": READ_COMMITTED})
        rows = store.pending_outbox(session, limit, created_before)
        if not rows:
            return 0, 0
        sent = publish_order_created(publish, rows)
        store.clear_outbox(session, sent)
        return len(rows), len(sent)

    return run_transaction(db, work, name="publishing the outbox", retry_unknown_commit=True)


def relay_outbox(db, publish, now=None):
    """Publish events for committed orders whose event has not gone out
    within OUTBOX_GRACE. Returns how many were published."""
    cutoff = (now or utc_now()) - OUTBOX_GRACE
    return publish_outbox(db, publish, created_before=cutoff)[1]

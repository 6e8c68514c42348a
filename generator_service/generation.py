"""What order_generator does, as plain functions of a database session
factory (`db.get_session`) and an event publisher, so they test without
nameko.

Every order is committed together with an outbox row; the OrderCreated event
is published after the commit and the outbox row is removed only once the
broker has confirmed and routed it. If publishing fails (broker down, no
processor queue bound yet), `relay_outbox` publishes it later.
"""

import logging
from datetime import timedelta

from generator_service import store
from generator_service.orders import order_as_dict, random_quantity, utc_now
from order_contract import ORDER_CREATED, OrderCreated, validate_quantity
from order_pipeline.settings import generator_settings

log = logging.getLogger(__name__)

# The outbox relay leaves young rows to the publish that follows each commit.
OUTBOX_GRACE = timedelta(seconds=2)
OUTBOX_BATCH = 500


def prepare_state(db, config):
    """At start-up: create the generator_state row on a fresh system, and
    say whether generation is on, since that survives restarts."""
    settings = generator_settings(config)
    with db.get_session() as session:
        store.seed_state(session, settings.generate_on_first_start)
        running = store.read_state(session).running
    if running:
        log.info("order generation is on: one order every %s s", settings.interval_seconds)
    else:
        log.info(
            "order generation is off (the state is kept across restarts); start it "
            "with POST /start and the bearer token, or "
            "n.rpc.order_generator.start() in nameko shell"
        )


def generate_tick(db, publish, settings, rng):
    """Create this tick's order if generation is on and the tick is ours."""
    with db.get_session() as session:
        if not store.claim_tick(session, settings.interval_seconds):
            return None
        order = order_as_dict(store.add_order(session, random_quantity(rng, settings), utc_now()))
    announce(db, publish, [order["id"]])
    return order


def create_order(db, publish, quantity):
    """Create one order now, whatever the on/off state."""
    validate_quantity(quantity)
    with db.get_session() as session:
        order = order_as_dict(store.add_order(session, quantity, utc_now()))
    announce(db, publish, [order["id"]])
    return order


def publish_order_created(publish, order_ids):
    """Publish OrderCreated for each id; return the ids the broker routed."""
    routed = publish(ORDER_CREATED, [OrderCreated(i).to_payload() for i in order_ids])
    return [order_id for order_id, ok in zip(order_ids, routed) if ok]


def announce(db, publish, order_ids):
    """Publish OrderCreated for each id; clear the outbox rows that made it."""
    sent = publish_order_created(publish, order_ids)
    if sent:
        with db.get_session() as session:
            store.clear_outbox(session, sent)
    return sent


def relay_outbox(db, publish, now=None):
    """Publish events for committed orders whose event has not gone out.

    Returns how many were published.
    """
    cutoff = (now or utc_now()) - OUTBOX_GRACE
    with db.get_session() as session:
        # Under READ COMMITTED the locks are on the rows taken only, not on
        # the gaps next to them: new orders' outbox inserts do not wait for
        # this relay's publishing.
        session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        order_ids = store.pending_outbox(session, cutoff, OUTBOX_BATCH)
        if not order_ids:
            return 0
        sent = publish_order_created(publish, order_ids)
        store.clear_outbox(session, sent)
    return len(sent)

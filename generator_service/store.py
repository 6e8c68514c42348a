"""SQL for order_generator's tables. Each function takes an open session;
the caller owns the transaction."""

import random
import secrets

from sqlalchemy import bindparam, delete, exists, func, insert, select, text
from sqlalchemy.dialects.mysql import insert as mysql_insert

from generator_service.models import (
    CREATE_TOKEN_LENGTH,
    GeneratorState,
    IdempotencyKey,
    Order,
    OrderCount,
    OrderOutbox,
)
from order_pipeline.upserts import adding_to

STATE_ID = 1
# Concurrent creates add to one of this many count rows, picked at random,
# rather than all to one (whose write lock would make them take turns).
ORDER_COUNT_SHARDS = 16
ADD_TO_COUNT = adding_to(OrderCount.__table__, ["shard"], ["orders_created"])
# A tick counts if the previous one was at least this share of the interval
# ago, which absorbs timer jitter but not a second instance's tick.
TICK_SLACK = 0.9


def seed_state(session, running):
    """Create the state row on a fresh system (generation on or off as
    `running` says); a no-op once it exists. The generator calls it at
    start-up, so every other function here can rely on the row."""
    session.execute(
        mysql_insert(GeneratorState).values(id=STATE_ID, running=running).prefix_with("IGNORE")
    )
    session.execute(
        mysql_insert(OrderCount)
        .values([{"shard": shard, "orders_created": 0} for shard in range(ORDER_COUNT_SHARDS)])
        .prefix_with("IGNORE")
    )


def read_state(session):
    return session.execute(
        select(GeneratorState)
        .where(GeneratorState.id == STATE_ID)
        .execution_options(populate_existing=True)
    ).scalar_one()


def orders_created(session):
    """Orders created so far: the sum of the count shards."""
    return int(session.scalar(select(func.coalesce(func.sum(OrderCount.orders_created), 0))))


def pick_count_shard() -> int:
    return random.randrange(ORDER_COUNT_SHARDS)


def count_orders(session, created):
    """Add `created` orders to one count shard, picked at random."""
    session.execute(ADD_TO_COUNT, {"shard": pick_count_shard(), "orders_created": created})


def set_running(session, running):
    """Turn generation on or off. Turned on from off, the tick schedule
    starts again (the first tick creates its orders at once, and the time
    it was off is not made up)."""
    session.execute(
        text(
            # MariaDB assigns left to right: last_tick_at reads the old `running`.
            "UPDATE generator_state SET last_tick_at = IF(running, last_tick_at, NULL), "
            "running = :running WHERE id = :id"
        ),
        {"id": STATE_ID, "running": running},
    )


def claim_tick(session, interval_seconds, most_intervals=1):
    """Take this tick for the calling instance: the number of intervals it
    stands for, from 1 to `most_intervals`; 0 if generation is off or
    another instance already took this interval.

    `last_tick_at` is the tick schedule, kept by the database's own clock
    (so instances on different hosts agree) under the state row's lock (so
    two cannot both win). A tick that comes several intervals after the
    last stands for each of them, and the schedule moves on by that many
    intervals, keeping the fraction of an interval left over: so the timer
    keeps its rate when a tick takes longer than the interval. One more
    than `most_intervals` behind (a generator that was stopped, a machine
    that stalled), the schedule starts again from now: nothing is made up
    beyond that.
    """
    interval_us = int(interval_seconds * 1_000_000)
    state = session.execute(
        text(
            "SELECT running, TIMESTAMPDIFF(MICROSECOND, last_tick_at, UTC_TIMESTAMP(6)) AS elapsed "
            "FROM generator_state WHERE id = :id FOR UPDATE"
        ),
        {"id": STATE_ID},
    ).one()
    if not state.running:
        return 0
    if state.elapsed is None:  # the first tick since generation was turned on
        intervals, behind = 1, True
    elif state.elapsed < interval_us * TICK_SLACK:
        return 0
    else:
        intervals = min(max(1, state.elapsed // interval_us), most_intervals)
        behind = state.elapsed >= (most_intervals + 1) * interval_us
    move_on = text(
        "UPDATE generator_state SET last_tick_at = "
        "IF(:behind, UTC_TIMESTAMP(6), last_tick_at + INTERVAL :advance_us MICROSECOND) "
        "WHERE id = :id"
    )
    session.execute(
        move_on, {"id": STATE_ID, "behind": behind, "advance_us": intervals * interval_us}
    )
    return intervals


def new_create_token() -> str:
    """A token naming one create transaction (stored with its orders)."""
    return secrets.token_hex(CREATE_TOKEN_LENGTH // 2)


def add_order(session, quantity, created_at, traceparent=None, create_token=None):
    """Insert an order, its outbox row (with the trace context its event is
    to continue, if any), and count it. Returns the Order."""
    order = Order(quantity=quantity, created_at=created_at, create_token=create_token)
    session.add(order)
    session.flush()  # assigns order.id
    session.execute(
        insert(OrderOutbox).values(
            order_id=order.id, created_at=created_at, traceparent=traceparent
        )
    )
    count_orders(session, 1)
    return order


# Core statements given a list of rows: compiled once, then sent as one
# multi-row INSERT by SQLAlchemy (insertmanyvalues) and PyMySQL.
INSERT_ORDERS = insert(Order.__table__).returning(
    Order.__table__.c.id, Order.__table__.c.quantity, Order.__table__.c.created_at
)
INSERT_OUTBOX_ROWS = insert(OrderOutbox.__table__)


def add_orders(session, quantities, created_at, traceparents=None, create_token=None):
    """Insert orders, one per quantity, with their outbox rows (each with
    the trace context its event is to continue: `traceparents`, one per
    quantity, or None), and count them: one INSERT for the orders, one for
    the outbox. Returns (id, quantity, created_at) rows, ids ascending in
    the order given.

    Ids are read back with RETURNING, never computed from the first one:
    a multi-row INSERT takes auto-increment values in row order, but steps
    them by auto_increment_increment (the cluster size, on Galera)."""
    rows = session.execute(
        INSERT_ORDERS,
        [
            {"quantity": quantity, "created_at": created_at, "create_token": create_token}
            for quantity in quantities
        ],
    ).all()
    rows.sort(key=lambda row: row.id)
    traceparents = traceparents or [None] * len(rows)
    session.execute(
        INSERT_OUTBOX_ROWS,
        [
            {"order_id": row.id, "created_at": created_at, "traceparent": traceparent}
            for row, traceparent in zip(rows, traceparents, strict=True)
        ],
    )
    count_orders(session, len(rows))
    return rows


def find_created_orders(session, created_at, create_token):
    """(id, quantity, created_at) rows of the orders a create transaction
    stored (its `created_at` and token), ids ascending; [] if it was not
    applied."""
    return session.execute(
        select(Order.id, Order.quantity, Order.created_at)
        .where(Order.created_at == created_at, Order.create_token == create_token)
        .order_by(Order.id)
    ).all()


def find_keyed_order(session, key):
    """(the Order, when its key was stored) for an idempotency key, or None."""
    row = session.execute(
        select(Order, IdempotencyKey.created_at)
        .join(IdempotencyKey, IdempotencyKey.order_id == Order.id)
        .where(IdempotencyKey.idempotency_key == key)
    ).first()
    return None if row is None else (row[0], row[1])


def forget_key(session, key):
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.idempotency_key == key))


def add_keyed_order(session, quantity, key, created_at, traceparent=None, create_token=None):
    """add_order, and the key naming it. A key already stored (by a
    concurrent retry that committed first) raises IntegrityError, and the
    caller's rollback takes the order back with it."""
    order = add_order(session, quantity, created_at, traceparent, create_token)
    session.execute(
        insert(IdempotencyKey).values(idempotency_key=key, order_id=order.id, created_at=created_at)
    )
    return order


def forget_expired_keys(session, before, limit):
    """Delete up to `limit` idempotency keys stored before `before`; return how many."""
    expired = (
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return session.execute(expired.with_dialect_options(mysql_limit=limit)).rowcount


def get_order(session, order_id):
    return session.get(Order, order_id)


# Table statements, not ORM ones, on the per-order paths: rows, not objects
# in the session's identity map (the ORM's bookkeeping cost more than the
# query's round trip in the generator's profile).
_orders, _outbox = Order.__table__, OrderOutbox.__table__
ORDERS_BY_ID = select(_orders.c.id, _orders.c.quantity, _orders.c.created_at).where(
    _orders.c.id.in_(bindparam("ids", expanding=True))
)
CLEAR_OUTBOX = delete(_outbox).where(_outbox.c.order_id.in_(bindparam("ids", expanding=True)))


def get_orders(session, order_ids):
    """(id, quantity, created_at) rows of the orders that exist."""
    if not order_ids:
        return []
    return session.execute(ORDERS_BY_ID, {"ids": list(order_ids)}).all()


def pending_outbox(session, limit, created_before=None):
    """Lock and return up to `limit` (order id, traceparent) rows still
    waiting for their event (only those created before `created_before`, if
    given).

    SKIP LOCKED lets several publishers (an instance's background publisher
    and relay, other instances') take rows at once without publishing the
    same ones.
    """
    query = select(_outbox.c.order_id, _outbox.c.traceparent)
    if created_before is not None:
        query = query.where(_outbox.c.created_at < created_before)
    return [
        (row.order_id, row.traceparent)
        for row in session.execute(
            query.order_by(_outbox.c.order_id).limit(limit).with_for_update(skip_locked=True)
        )
    ]


def clear_outbox(session, order_ids):
    if order_ids:
        session.execute(CLEAR_OUTBOX, {"ids": list(order_ids)})


def recent_orders(session, limit):
    """The last `limit` orders created, newest first."""
    return list(session.scalars(select(Order).order_by(Order.id.desc()).limit(limit)))


# Seconds since the epoch of a naive UTC DATETIME, with no time zone applied
# (UNIX_TIMESTAMP would read it in the session's time zone).
CREATED_PER_SECOND = text(
    "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', created_at) AS second, COUNT(*) AS created "
    "FROM orders WHERE created_at >= :since GROUP BY second ORDER BY second"
)


def created_per_second(session, since):
    """[(epoch second, orders created in it)] from `since` (naive UTC) on."""
    return [
        (int(row.second), int(row.created))
        for row in session.execute(CREATED_PER_SECOND, {"since": since})
    ]


def outbox_size(session):
    """Orders whose OrderCreated event the broker has not confirmed yet."""
    return session.scalar(select(func.count()).select_from(OrderOutbox))


# --- retention (generator_service.retention) ----------------------------------

# Orders old enough, with no outbox row and no idempotency key, read through
# ix_orders_created_at (which holds the id too) from where the last batch
# stopped: a batch reads its rows and no more, however large the table.
OLD_ORDERS = text(
    "SELECT o.created_at, o.id FROM orders o "
    "WHERE o.created_at < :cutoff "
    "AND (o.created_at > :after_at OR (o.created_at = :after_at AND o.id > :after_id)) "
    "AND NOT EXISTS (SELECT 1 FROM order_outbox b WHERE b.order_id = o.id) "
    "AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.order_id = o.id) "
    "ORDER BY o.created_at, o.id LIMIT :limit"
)


def old_orders(session, cutoff, after, limit):
    """Up to `limit` (created_at, id) rows of orders created before
    `cutoff` that neither wait in the outbox nor are named by an idempotency
    key, in (created_at, id) order after `after` (such a pair)."""
    after_at, after_id = after
    return session.execute(
        OLD_ORDERS,
        {"cutoff": cutoff, "after_at": after_at, "after_id": after_id, "limit": limit},
    ).all()


def delete_orders(session, order_ids, cutoff):
    """Delete those of `order_ids` still created before `cutoff`, with no
    outbox row and no idempotency key (their foreign keys would cascade);
    return how many."""
    if not order_ids:
        return 0
    statement = (
        delete(Order)
        .where(Order.id.in_(order_ids), Order.created_at < cutoff)
        .where(~exists().where(OrderOutbox.order_id == Order.id))
        .where(~exists().where(IdempotencyKey.order_id == Order.id))
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount

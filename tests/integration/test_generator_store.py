"""order_generator's SQL against a real MariaDB database of the test's own."""

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import eventlet
import pytest
from eventlet.event import Event
from sqlalchemy import text

from generator_service import generation, store
from generator_service.settings import GeneratorSettings
from harness.processes import wait_until
from harness.tables import sql
from order_contract import ORDER_CREATED
from order_pipeline.times import utc_now

SETTINGS = GeneratorSettings(
    interval_seconds=0.3, generate_on_first_start=True, quantity_min=1, quantity_max=100
)
# A tick interval long enough that every claim a test makes falls within one
# interval, however slow the machine; tests move time on themselves.
SAME_TICK = 60


@pytest.fixture(autouse=True)
def seeded_state(db):
    """The state row, as the generator creates it at start-up."""
    with db.get_session() as session:
        store.seed_state(session, running=True)


def claim(db, most_intervals=1):
    with db.get_session() as session:
        return store.claim_tick(session, SAME_TICK, most_intervals)


def schedule_moved_back(db, seconds):
    """Move the tick schedule `seconds` into the past, as if that long had gone by."""
    sql(
        db.uri,
        "UPDATE generator_state SET last_tick_at = last_tick_at - INTERVAL :us MICROSECOND",
        us=int(seconds * 1_000_000),
    )


def an_interval_passes(db):
    schedule_moved_back(db, SAME_TICK)


def test_seeding_the_state_keeps_what_is_there(db):
    with db.get_session() as session:
        store.set_running(session, False)
        store.seed_state(session, running=True)
    assert sql(db.uri, "SELECT running FROM generator_state") == [(0,)]
    assert claim(db) == 0


def test_one_tick_per_interval_and_none_while_stopped(db):
    assert claim(db) == 1
    assert claim(db) == 0  # same interval: already taken
    an_interval_passes(db)
    assert claim(db) == 1
    with db.get_session() as session:
        store.set_running(session, False)
    an_interval_passes(db)
    assert claim(db) == 0
    with db.get_session() as session:
        store.set_running(session, True)
    assert claim(db) == 1


def test_concurrent_instances_get_exactly_one_tick(db):
    claim(db)
    an_interval_passes(db)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: claim(db), range(8)))
    assert sorted(results) == [0] * 7 + [1]


def test_a_late_tick_stands_for_each_interval_it_missed_keeping_the_remainder(db):
    assert claim(db, most_intervals=10) == 1
    schedule_moved_back(db, 3.5 * SAME_TICK)
    assert claim(db, most_intervals=10) == 3
    # The half interval left over counts towards the next tick: half an
    # interval more and it is due.
    schedule_moved_back(db, 0.5 * SAME_TICK)
    assert claim(db, most_intervals=10) == 1


def test_a_tick_far_behind_makes_up_for_most_intervals_and_starts_again_from_now(db):
    assert claim(db, most_intervals=4) == 1
    schedule_moved_back(db, 100 * SAME_TICK)
    assert claim(db, most_intervals=4) == 4
    assert claim(db, most_intervals=4) == 0


def test_turning_generation_on_again_does_not_make_up_for_the_time_it_was_off(db):
    settings = dataclasses.replace(SETTINGS, interval_seconds=0.001)
    assert len(generation.generate_tick(db, settings, random.Random(1))) == 1
    with db.get_session() as session:
        store.set_running(session, False)
    schedule_moved_back(db, 60)
    with db.get_session() as session:
        store.set_running(session, True)
    assert len(generation.generate_tick(db, settings, random.Random(1))) == 1


def test_a_late_tick_at_a_short_interval_creates_the_orders_of_each_interval(db):
    settings = dataclasses.replace(SETTINGS, interval_seconds=0.1, orders_per_tick=2)
    generation.generate_tick(db, settings, random.Random(1))
    schedule_moved_back(db, 60)  # far behind: one second's worth, 10 intervals
    orders = generation.generate_tick(db, settings, random.Random(1))
    assert len(orders) == 10 * 2
    assert outbox(db)[-len(orders) :] == [order["id"] for order in orders]
    with db.get_session() as session:
        assert store.orders_created(session) == 1 * 2 + 10 * 2


def test_a_tick_never_makes_up_for_more_than_one_second_or_a_thousand_orders():
    one_second = dataclasses.replace(SETTINGS, interval_seconds=0.01)
    assert generation.catch_up_intervals(one_second) == 100
    assert generation.catch_up_intervals(SETTINGS) == 3  # 0.3 s
    default = dataclasses.replace(SETTINGS, interval_seconds=2)
    assert generation.catch_up_intervals(default) == 1  # one order per tick, as ever
    many = dataclasses.replace(SETTINGS, interval_seconds=0.0001, orders_per_tick=300)
    assert generation.catch_up_intervals(many) == 3


def test_a_create_commits_while_another_create_is_still_open(db, monkeypatch):
    """Creates share no row lock: one that counts on another shard commits
    while an earlier one still holds its transaction open (were they to
    queue on one row, the second would wait out the lock timeout and fail)."""
    shards = iter([0, 1])
    monkeypatch.setattr(store, "pick_count_shard", lambda: next(shards))
    with db.get_session() as first:
        store.add_order(first, 3, utc_now())
        with db.get_session() as second:
            second.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            store.add_orders(second, [4, 5], utc_now())
        # The second create is committed; the first is not, yet.
        assert sql(db.uri, "SELECT quantity FROM orders ORDER BY id") == [(4,), (5,)]
    assert sorted(q for (q,) in sql(db.uri, "SELECT quantity FROM orders")) == [3, 4, 5]
    with db.get_session() as session:
        assert store.orders_created(session) == 3


def test_concurrent_creates_are_all_counted(db):
    def create(quantity):
        return generation.create_orders(db, [quantity] * 5)

    with ThreadPoolExecutor(8) as pool:
        created = [order for orders in pool.map(create, range(1, 17)) for order in orders]
    assert len({order["id"] for order in created}) == 80
    with db.get_session() as session:
        assert store.orders_created(session) == 80
    assert sql(db.uri, "SELECT COUNT(*) FROM orders") == [(80,)]


def test_an_idempotency_key_names_one_order_for_its_window(db):
    first, created = generation.create_order_once(db, 5, "key-1")
    assert created is True
    assert generation.create_order_once(db, 9, "key-1") == (first, False)
    other, created = generation.create_order_once(db, 5, "KEY-1")  # keys match byte for byte
    assert created is True and other["id"] != first["id"]
    assert sql(db.uri, "SELECT COUNT(*) FROM orders") == [(2,)]
    assert outbox(db) == [first["id"], other["id"]]
    with db.get_session() as session:
        assert store.orders_created(session) == 2


def test_an_expired_key_creates_a_new_order_and_is_forgotten(db):
    long_ago = utc_now() - timedelta(hours=25)
    old, _ = generation.create_order_once(db, 5, "old-key", now=long_ago)
    generation.create_order_once(db, 5, "young-key")
    new, created = generation.create_order_once(db, 6, "old-key")
    assert created is True and new["id"] != old["id"]
    assert generation.create_order_once(db, 6, "old-key") == (new, False)

    generation.create_order_once(db, 5, "another-old-key", now=long_ago)
    assert generation.forget_expired_keys(db) == 1
    keys = sql(db.uri, "SELECT idempotency_key FROM idempotency_keys ORDER BY idempotency_key")
    assert keys == [("old-key",), ("young-key",)]


def test_concurrent_retries_with_one_key_create_one_order(db):
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda q: generation.create_order_once(db, q, "retry"), range(1, 9))
        )
    assert [created for _, created in answers].count(True) == 1
    assert len({order["id"] for order, _ in answers}) == 1
    assert sql(db.uri, "SELECT COUNT(*) FROM orders") == [(1,)]
    with db.get_session() as session:
        assert store.orders_created(session) == 1


def lock_waits(db):
    """Transactions of this test's database waiting for a row lock."""
    ((waiting,),) = sql(
        db.uri,
        "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
        "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
        "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()",
    )
    return waiting


def test_a_retry_racing_the_first_create_of_its_key_gets_the_first_order(db):
    with ThreadPoolExecutor(1) as pool:
        with db.get_session() as first:
            order = store.add_keyed_order(first, 3, "contested", utc_now())
            first_id = order.id
            retry = pool.submit(generation.create_order_once, db, 4, "contested")
            # The retry has inserted its order and waits on the key's lock.
            wait_until(lambda: lock_waits(db) == 1, 30, message="the retry waiting on the key")
        again, created = retry.result(timeout=30)
    assert (again["id"], again["quantity"], created) == (first_id, 3, False)
    assert sql(db.uri, "SELECT id FROM orders") == [(first_id,)]
    assert outbox(db) == [first_id]
    with db.get_session() as session:
        assert store.orders_created(session) == 1


class RecordingPublisher:
    """`publish(event_type, payloads)` that records what it is given and
    reports each payload routed (or not, as `routed` says)."""

    def __init__(self, routed=True):
        self.routed = routed
        self.published = []
        self.calls = 0

    def __call__(self, event_type, payloads, trace_contexts=None):
        self.calls += 1
        self.published.extend((event_type, payload) for payload in payloads)
        self.trace_contexts = trace_contexts
        return [self.routed] * len(payloads)


def outbox(db):
    return [row[0] for row in sql(db.uri, "SELECT order_id FROM order_outbox ORDER BY order_id")]


def test_a_tick_commits_an_order_with_its_outbox_row(db):
    (order,) = generation.generate_tick(db, SETTINGS, random.Random(1))
    assert 1 <= order["quantity"] <= 100
    rows = sql(db.uri, "SELECT id, quantity FROM orders")
    assert [tuple(r) for r in rows] == [(order["id"], order["quantity"])]
    assert outbox(db) == [order["id"]]
    with db.get_session() as session:
        assert store.orders_created(session) == 1

    publish = RecordingPublisher()
    assert generation.publish_outbox(db, publish) == (1, 1)
    assert publish.published == [(ORDER_CREATED, {"order_id": order["id"]})]
    assert outbox(db) == []
    assert generation.publish_outbox(db, publish) == (0, 0)


def test_create_orders_commits_every_order_with_its_outbox_row_and_count(db):
    orders = generation.create_orders(db, [5, 1, 9])
    assert [order["quantity"] for order in orders] == [5, 1, 9]
    ids = [order["id"] for order in orders]
    assert ids == sorted(ids)
    rows = sql(db.uri, "SELECT id, quantity FROM orders ORDER BY id")
    assert [tuple(r) for r in rows] == [(o["id"], o["quantity"]) for o in orders]
    assert outbox(db) == ids
    with db.get_session() as session:
        assert store.orders_created(session) == 3
    assert generation.create_order(db, 2)["id"] > ids[-1]


def test_a_tick_creates_orders_per_tick_orders_at_once(db):
    settings = dataclasses.replace(SETTINGS, interval_seconds=SAME_TICK, orders_per_tick=4)
    orders = generation.generate_tick(db, settings, random.Random(1))
    assert len(orders) == 4 and all(1 <= order["quantity"] <= 100 for order in orders)
    assert generation.generate_tick(db, settings, random.Random(1)) == []  # same tick
    assert outbox(db) == [order["id"] for order in orders]
    with db.get_session() as session:
        assert store.orders_created(session) == 4


def test_the_outbox_is_published_in_batches_oldest_first(db):
    ids = [generation.create_order(db, quantity)["id"] for quantity in range(1, 8)]
    publish = RecordingPublisher()
    assert generation.publish_outbox(db, publish, limit=5) == (5, 5)
    assert publish.calls == 1
    assert generation.publish_outbox(db, publish, limit=5) == (2, 2)
    assert [payload["order_id"] for _, payload in publish.published] == ids
    assert outbox(db) == []


def test_an_unrouted_event_stays_in_the_outbox_until_the_relay_sends_it(db):
    order = generation.create_order(db, 5)
    assert generation.publish_outbox(db, RecordingPublisher(routed=False)) == (1, 0)
    assert outbox(db) == [order["id"]]

    # Too young for the relay: the background publisher owns it.
    assert generation.relay_outbox(db, RecordingPublisher()) == 0
    later = utc_now() + timedelta(seconds=5)
    assert generation.relay_outbox(db, RecordingPublisher(routed=False), now=later) == 0
    assert outbox(db) == [order["id"]]
    publish = RecordingPublisher()
    assert generation.relay_outbox(db, publish, now=later) == 1
    assert publish.published == [(ORDER_CREATED, {"order_id": order["id"]})]
    assert outbox(db) == []


def test_publishers_at_work_together_never_send_the_same_order(db):
    held = [generation.create_order(db, quantity)["id"] for quantity in range(1, 41)]
    later = utc_now() + timedelta(seconds=5)
    first, taken, release = RecordingPublisher(), Event(), Event()

    def publish_when_released(event_type, payloads, trace_contexts=None):
        taken.send()
        release.wait()
        return first(event_type, payloads, trace_contexts)

    holder = eventlet.spawn(generation.publish_outbox, db, publish_when_released)
    try:
        with eventlet.Timeout(60):
            taken.wait()  # the first pass holds the locks on all 40 rows
            # Other passes and relays, of this instance or another, skip
            # those rows rather than wait for them or send them too...
            others = RecordingPublisher()
            assert generation.publish_outbox(db, others) == (0, 0)
            assert generation.relay_outbox(db, others, now=later) == 0
            # ...and new orders commit meanwhile, whose rows they do take.
            new = [generation.create_order(db, quantity)["id"] for quantity in (1, 2)]
            assert generation.publish_outbox(db, others) == (2, 2)
    finally:
        release.send()  # whatever happened, end the first pass's transaction
    assert holder.wait() == (40, 40)
    assert [payload["order_id"] for _, payload in first.published] == held
    assert [payload["order_id"] for _, payload in others.published] == new
    assert outbox(db) == []

"""order_generator's SQL against a real MariaDB database of the test's own."""
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from generator_service import generation, store
from generator_service.events import ORDER_CREATED
from generator_service.orders import GeneratorSettings, utc_now
from tests.support.infra import sql

SETTINGS = GeneratorSettings(interval_seconds=0.3, generate_on_first_start=True,
                             quantity_min=1, quantity_max=100, outbox_sweep_seconds=1)
# A tick interval long enough that every claim a test makes falls within one
# interval, however slow the machine; tests move time on themselves.
SAME_TICK = 60


def claim(db, default=True):
    with db.get_session() as session:
        return store.claim_tick(session, SAME_TICK, default)


def an_interval_passes(db):
    """Move the last tick an interval into the past, as if that long had gone by."""
    sql(db.uri, "UPDATE generator_state SET last_tick_at = last_tick_at - INTERVAL :s SECOND",
        s=SAME_TICK)


def test_a_fresh_system_generates_according_to_config(db):
    assert claim(db, default=False) is False
    assert sql(db.uri,
               "SELECT running FROM generator_state")[0][0] == 0


def test_one_tick_per_interval_and_none_while_stopped(db):
    assert claim(db) is True
    assert claim(db) is False          # same interval: already taken
    an_interval_passes(db)
    assert claim(db) is True
    with db.get_session() as session:
        store.set_running(session, False, True)
    an_interval_passes(db)
    assert claim(db) is False
    with db.get_session() as session:
        store.set_running(session, True, True)
    assert claim(db) is True


def test_concurrent_instances_get_exactly_one_tick(db):
    claim(db)  # create the state row
    an_interval_passes(db)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: claim(db), range(8)))
    assert results.count(True) == 1


class RecordingPublisher:
    def __init__(self, routed=True):
        self.routed = routed
        self.published = []

    def __call__(self, event_type, payloads):
        self.published.extend((event_type, payload) for payload in payloads)
        return [self.routed] * len(payloads)


def outbox(db):
    return [row[0] for row in sql(db.uri,
                                  "SELECT order_id FROM order_outbox ORDER BY order_id")]


def test_a_tick_commits_an_order_and_publishes_it(db):
    publish = RecordingPublisher()
    order = generation.generate_tick(db, publish, SETTINGS, random.Random(1))
    assert 1 <= order["quantity"] <= 100
    assert publish.published == [(ORDER_CREATED, {"order_id": order["id"]})]
    assert outbox(db) == []
    rows = sql(db.uri, "SELECT id, quantity FROM orders")
    assert [tuple(r) for r in rows] == [(order["id"], order["quantity"])]
    with db.get_session() as session:
        assert store.read_state(session, True).orders_created == 1


def test_an_unrouted_event_stays_in_the_outbox_until_the_relay_sends_it(db):
    order = generation.create_order(db, RecordingPublisher(routed=False), SETTINGS, 5)
    assert outbox(db) == [order["id"]]

    # Too young for the relay: the publish after the commit owns it.
    assert generation.relay_outbox(db, RecordingPublisher()) == 0
    later = utc_now() + timedelta(seconds=5)
    assert generation.relay_outbox(db, RecordingPublisher(routed=False), now=later) == 0
    assert outbox(db) == [order["id"]]
    publish = RecordingPublisher()
    assert generation.relay_outbox(db, publish, now=later) == 1
    assert publish.published == [(ORDER_CREATED, {"order_id": order["id"]})]
    assert outbox(db) == []


def test_concurrent_relays_do_not_publish_the_same_order_twice(db):
    for quantity in range(1, 41):
        generation.create_order(db, RecordingPublisher(routed=False), SETTINGS, quantity)
    later = utc_now() + timedelta(seconds=5)
    publishers = [RecordingPublisher() for _ in range(4)]

    def slow(publisher):
        def publish(event_type, payloads):
            time.sleep(0.2)  # hold the row locks while "publishing"
            return publisher(event_type, payloads)
        return publish

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: generation.relay_outbox(db, slow(p), now=later), publishers))
    published = [payload["order_id"] for p in publishers for _, payload in p.published]
    assert sorted(published) == sorted(set(published))
    assert len(published) == 40
    assert outbox(db) == []

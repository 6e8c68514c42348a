"""Dead letters over RPC and HTTP, with the real services on the real broker
and database.

An OrderCreated event for an order the generator does not have is set aside
at once (OrderNotFound is permanent): the handler publishes it to the
dead-letter queue and the processor moves it into its dead_letters table.
The tests make such dead letters, then list, replay and discard them, and
check each guarantee the API makes: listing touches no queue (a thousand
listings on a quorum queue, under RabbitMQ 4's delivery limit, lose
nothing), a replay whose cause is gone is processed once, one that fails
again comes back once with its attempts and history raised, two callers at
once replay or discard each dead letter once, a discard is final and
logged, and no reason shows a URL, a credential, a host or an address.
"""

import json
import logging
import re
import socket
from decimal import ROUND_HALF_UP
from types import SimpleNamespace

import eventlet
import pytest
from amqp import Message
from amqp.exceptions import MessageNacked
from eventlet.event import Event
from sqlalchemy import create_engine

from gateway.openapi import openapi_document
from harness.broker import (
    HANDLER_QUEUE,
    list_queues,
    local_rabbitmqctl,
    publish_order_created,
    queue_depth,
    vhost_of,
)
from harness.processes import free_port, wait_until
from harness.tables import dead_letter_rows, parked_dead_letters, processed_count, sql
from order_contract import DEAD_LETTER_QUEUE, InvalidArgument
from order_pipeline.broker import connect
from order_pipeline.dead_letters import DeadLetterIntake, read_dead_letter
from order_pipeline.queues import HANDLER_DELIVERY_LIMIT, dead_letter_queue_for
from order_pipeline.scrub import Scrubber
from order_pipeline.transactions import Sessions
from processor_service import dead_letters
from processor_service.dependencies import order_id_of
from processor_service.pricing import CENT
from tests.support.event_stream import EventReader
from tests.support.openapi import response_schema, schema_violations
from tests.support.services import PATIENT_RPC_TIMEOUT, InProcessServices

MISSING = 10**9  # order ids no generated order reaches in a test
MARKER = MISSING + 999  # an event sent after the others, to know they were handled
FAILING_FRAME = re.compile(r"^processor_service/processing\.py:process_order_batch:\d+$")
# RabbitMQ 4 gives every quorum queue without a limit of its own this one.
RABBITMQ_4_DEFAULT_DELIVERY_LIMIT = 20


@pytest.fixture
def services(services):
    """All three services, started (the fixture is tests/integration/conftest.py's),
    with the patient RPC timeout: under a loaded CI machine the processor's
    confirmation call timed out at 1 s, and an event meant to fail once, for
    good, was retried first."""
    services.config["RPC_TIMEOUT_SECONDS"] = PATIENT_RPC_TIMEOUT
    return services.start("generator", "processor", "gateway")


@pytest.fixture
def quorum_services(make_database, make_vhost):
    running = InProcessServices(
        make_database(), make_vhost(), QUEUE_TYPE="quorum", RPC_TIMEOUT_SECONDS=PATIENT_RPC_TIMEOUT
    )
    running.start("generator", "processor", "gateway")
    yield running
    running.stop_all()


def park(services, order_ids):
    """Dead-letter an OrderCreated for each id (none of them exists yet),
    and wait until the processor keeps them all."""
    before = parked_dead_letters(services.db_uri)
    publish_order_created(services.amqp_uri, [{"order_id": i} for i in order_ids])
    wait_until(
        lambda: parked_dead_letters(services.db_uri) == before + len(order_ids),
        20,
        message=f"{len(order_ids)} dead letters kept",
    )


def listed(services, limit=100):
    with services.rpc() as rpc:
        return rpc.order_processor.dead_letters(limit)


def add_orders(services, order_ids, quantity=3):
    """The orders the parked events were about, now there (the cause is gone)."""
    for order_id in order_ids:
        sql(
            services.db_uri,
            "INSERT INTO orders (id, quantity, created_at) VALUES (:id, :q, UTC_TIMESTAMP(6))",
            id=order_id,
            q=quantity,
        )


def processed_ids(services):
    return sorted(row[0] for row in sql(services.db_uri, "SELECT order_id FROM order_process"))


def states(services):
    return {row.id: row.state for row in dead_letter_rows(services.db_uri)}


def assert_documented(path, method, response, body):
    document = openapi_document()
    schema = response_schema(document, path, method, response.status_code)
    assert schema_violations(document, schema, body) == []


def test_listing_reads_the_table_takes_nothing_away_and_changes_no_count(services):
    park(services, [MISSING + 1, MISSING + 2, MISSING + 3])
    first = listed(services)
    # (Batches are dead-lettered concurrently: the order is theirs.)
    assert sorted(letter["order_id"] for letter in first) == [MISSING + 1, MISSING + 2, MISSING + 3]
    for letter in first:
        assert letter["reason"] == f"OrderNotFound: order {letter['order_id']} does not exist"
        assert (letter["attempts"], letter["error_type"]) == (1, "OrderNotFound")
        assert letter["body"] == f'{{"order_id": {letter["order_id"]}}}'
        assert FAILING_FRAME.match(letter["failing_frame"]), letter["failing_frame"]
        assert letter["first_failed_at"] == letter["last_failed_at"] <= letter["dead_lettered_at"]
        assert letter["trace_id"] is None  # published from outside, with no trace
    assert len({letter["id"] for letter in first}) == 3
    # Again, in part, over HTTP: the same letters in the same order, none gone.
    assert listed(services, limit=2) == first[:2]
    response, body = services.get("/dead-letters")
    assert response.status_code == 200
    assert body == {"count": 3, "dead_letters": first}
    assert_documented("/dead-letters", "GET", response, body)
    assert listed(services) == first
    # The queue was only the way in: the letters are in the table.
    assert queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE) == 0
    assert set(states(services).values()) == {"parked"}
    assert processed_count(services.db_uri) == 0


def test_a_thousand_listings_on_a_quorum_queue_under_rabbitmq_4s_delivery_limit_lose_nothing(
    quorum_services,
):
    services = quorum_services
    vhost = vhost_of(services.amqp_uri)
    # RabbitMQ 4's default, as a policy on this test's vhost (a policy's
    # limit wins over a queue's larger one): browsing a queue the old way,
    # taking a message and giving it back, loses it after this many turns.
    local_rabbitmqctl(
        "set_policy",
        "-p",
        vhost,
        "rabbitmq-4-default",
        ".*",
        json.dumps({"delivery-limit": RABBITMQ_4_DEFAULT_DELIVERY_LIMIT}),
        "--apply-to",
        "queues",
    )
    assert browsed_until_gone(services.amqp_uri) == RABBITMQ_4_DEFAULT_DELIVERY_LIMIT + 1

    letters = [MISSING + n for n in range(1, 6)]
    park(services, letters)
    response, first = services.get("/dead-letters")
    assert first["count"] == 5
    for _ in range(1000):
        assert services.get("/dead-letters")[1] == first
    with services.rpc() as rpc:
        assert rpc.order_processor.dead_letter_overview(100) == first

    # Every one of them is still there to be replayed, and each is processed once.
    add_orders(services, letters)
    assert services.post("/dead-letters/replay", json={})[1] == {"replayed": 5}
    wait_until(lambda: processed_ids(services) == letters, 30, message="the five replayed")
    assert set(states(services).values()) == {"replayed"}
    assert services.get("/dead-letters")[1] == {"count": 0, "dead_letters": []}


def browsed_until_gone(amqp_uri):
    """How many times a message on a quorum queue of the vhost can be taken
    and given back before the broker drops it. (A basic.get after a
    basic.reject on the same channel sees the message back, if it is.)"""
    name = "browsed-the-old-way"
    with connect(amqp_uri) as connection:
        channel = connection.channel()
        channel.queue_declare(
            name, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"}
        )
        channel.basic_publish_confirm(Message(b"{}"), exchange="", routing_key=name)
        for turns in range(100):
            message = channel.basic_get(name)
            if message is None:
                return turns
            channel.basic_reject(message.delivery_tag, requeue=True)
    raise AssertionError("the message was never dropped")


def test_a_message_returned_past_the_handler_queues_delivery_limit_is_kept_as_a_dead_letter(
    quorum_services,
):
    """A message that never gets settled (one that kills the processor each
    time, say) is parked by the broker, not dropped and not looped for ever."""
    services = quorum_services
    services.stop("processor")
    publish_order_created(services.amqp_uri, [{"order_id": MISSING}])
    with connect(services.amqp_uri) as connection:
        channel = connection.channel()
        for _ in range(HANDLER_DELIVERY_LIMIT + 1):
            message = wait_until(lambda: channel.basic_get(HANDLER_QUEUE), 10, message="the event")
            channel.basic_reject(message.delivery_tag, requeue=True)
    wait_until(lambda: queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE) == 1, 10, message="parked")
    assert queue_depth(services.amqp_uri, HANDLER_QUEUE) == 0
    services.start("processor")
    wait_until(lambda: parked_dead_letters(services.db_uri) == 1, 20, message="kept")
    (letter,) = listed(services)
    assert (letter["order_id"], letter["error_type"]) == (MISSING, "DeliveryLimit")
    assert f"more than {HANDLER_DELIVERY_LIMIT} times" in letter["reason"]


def test_a_replay_whose_cause_is_gone_is_processed_exactly_once(services):
    park(services, [MISSING])
    (letter,) = listed(services)
    add_orders(services, [MISSING])
    response, body = services.post("/dead-letters/replay", json={"ids": [letter["id"]]})
    assert (response.status_code, body) == (200, {"replayed": 1})
    assert_documented("/dead-letters/replay", "POST", response, body)
    wait_until(lambda: processed_count(services.db_uri) == 1, 20, message="the replayed order")
    ((quantity, unit_price, execution_price),) = sql(
        services.db_uri,
        "SELECT o.quantity, p.unit_price, p.execution_price "
        "FROM orders o JOIN order_process p ON p.order_id = o.id WHERE o.id = :id",
        id=MISSING,
    )
    # Half up to the cent, the pricing rule (quantize's default rounds half to even).
    assert execution_price == (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
    assert listed(services) == []
    assert states(services) == {letter["id"]: "replayed"}
    # Replaying the same id again finds nothing: it went back once.
    assert services.post("/dead-letters/replay", json={"ids": [letter["id"]]})[1] == {"replayed": 0}
    assert processed_count(services.db_uri) == 1


def test_a_replay_that_fails_again_comes_back_once_with_its_attempts_and_history(services):
    park(services, [MISSING])
    (letter,) = listed(services)
    response, body = services.post("/dead-letters/replay", json={})  # all of them
    assert (response.status_code, body) == (200, {"replayed": 1})
    (again,) = wait_until(
        lambda: [item for item in listed(services) if item["attempts"] == 2],
        20,
        message="the replayed message back among the dead letters",
    )
    assert again["id"] != letter["id"]  # a new stay, a new id
    assert again["order_id"] == MISSING and again["reason"] == letter["reason"]
    assert again["first_failed_at"] == letter["first_failed_at"]
    assert again["last_failed_at"] > letter["last_failed_at"]
    (row,) = [row for row in dead_letter_rows(services.db_uri) if row.id == again["id"]]
    history = json.loads(row.failures)
    assert [entry["error_type"] for entry in history] == ["OrderNotFound", "OrderNotFound"]
    assert [entry["at"] for entry in history] == [again["first_failed_at"], again["last_failed_at"]]
    # It stays there: nothing replays it again by itself. By the time an
    # event sent after it is kept, it is still the one letter it was.
    park(services, [MARKER])
    letters = listed(services)
    assert [(item["order_id"], item["attempts"]) for item in letters] == [(MISSING, 2), (MARKER, 1)]
    assert states(services) == {
        letter["id"]: "replayed",
        again["id"]: "parked",
        letters[1]["id"]: "parked",
    }


def test_two_callers_at_once_replay_each_dead_letter_once(services):
    letters = [MISSING + n for n in range(1, 31)]
    park(services, letters)
    add_orders(services, letters)
    ids = [letter["id"] for letter in listed(services)]

    def replay(body):
        return services.post("/dead-letters/replay", json=body)[1]["replayed"]

    # One names them all, the other asks for all: each letter goes once.
    both = [eventlet.spawn(replay, {"ids": ids}), eventlet.spawn(replay, {})]
    assert sum(thread.wait() for thread in both) == 30
    wait_until(lambda: processed_ids(services) == letters, 30, message="thirty processed")
    assert set(states(services).values()) == {"replayed"}
    assert replay({}) == 0


def test_two_callers_at_once_discard_each_dead_letter_once(services, caplog):
    park(services, [MISSING + n for n in range(1, 31)])
    ids = [letter["id"] for letter in listed(services)]

    def discard():
        return services.post("/dead-letters/discard", json={"ids": ids})[1]["discarded"]

    with caplog.at_level(logging.WARNING, logger="processor_service.dead_letters"):
        both = [eventlet.spawn(discard), eventlet.spawn(discard)]
        assert sum(thread.wait() for thread in both) == 30
    logged = [r.getMessage() for r in caplog.records if "discarded dead letter" in r.getMessage()]
    assert sorted(line.split()[3].rstrip(":") for line in logged) == sorted(ids)
    assert set(states(services).values()) == {"discarded"}


def record(n):
    message = SimpleNamespace(
        body=json.dumps({"order_id": MISSING + n}).encode(),
        properties={
            "application_headers": {
                "x-dead-letter-id": f"{n:016x}",
                "x-error": f"OrderNotFound: order {MISSING + n} does not exist",
                "x-attempt": 1,
            },
            "content_type": "application/json",
        },
    )
    return read_dead_letter(message, Scrubber())


def test_a_replay_under_way_holds_its_dead_letters_from_every_other_caller(db_uri):
    """The interleaving two operators can meet, made to happen: the second
    replay and a discard come while the first is publishing."""
    engine = create_engine(db_uri)
    sessions = Sessions.of_engine(engine)
    try:
        dead_letters.store_records(sessions, [record(n) for n in range(1, 6)], order_id_of)
        publishing, go_on, published = Event(), Event(), []

        def held_publish(replays):
            publishing.send()
            go_on.wait()
            published.extend(replay.id for replay in replays)
            return [replay.id for replay in replays]

        first = eventlet.spawn(dead_letters.replay, sessions, held_publish)
        publishing.wait()
        assert dead_letters.replay(sessions, published.extend) == 0
        assert dead_letters.discard(sessions, [f"{n:016x}" for n in range(1, 6)]) == 0
        go_on.send()
        assert first.wait() == 5
        assert sorted(published) == [f"{n:016x}" for n in range(1, 6)]  # each once
        assert dead_letters.replay(sessions, published.extend) == 0
        with sessions.get_session() as session:
            assert dead_letters.overview(session, 10) == (0, [])
    finally:
        engine.dispose()


def test_a_dead_letter_that_arrives_twice_is_kept_once(services):
    copy = Message(
        b'{"order_id": 7}',
        content_type="application/json",
        application_headers={"x-dead-letter-id": "00000000000000aa", "x-error": "E: twice"},
    )
    with connect(services.amqp_uri) as connection:
        channel = connection.channel()
        for _ in range(2):
            channel.basic_publish_confirm(copy, exchange="", routing_key=DEAD_LETTER_QUEUE)
    # An event parked after both copies: once it is kept, both were taken.
    publish_order_created(services.amqp_uri, [{"order_id": MARKER}])
    (marker,) = wait_until(
        lambda: [item for item in listed(services) if item["order_id"] == MARKER],
        20,
        message="the marker kept",
    )
    assert sorted(states(services)) == sorted(["00000000000000aa", marker["id"]])
    assert queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE) == 0


def publish_confirmed(channel, message, routing_key, attempts=5):
    """Publish until the broker confirms: a quorum queue may nack a message
    on a busy broker (seen once in CI), which asks the publisher to send it
    again, as the pipeline's own publisher does."""
    for attempt in range(attempts):
        try:
            return channel.basic_publish_confirm(message, exchange="", routing_key=routing_key)
        except MessageNacked:
            if attempt == attempts - 1:
                raise
            eventlet.sleep(0.1)


def test_dead_letters_wait_unacked_while_they_cannot_be_stored(amqp_uri):
    """The processor's database away: each dead letter is offered again,
    never lost, never given back to the queue, and stored once."""
    queue = dead_letter_queue_for(HANDLER_QUEUE, "quorum")
    stored, refusals = [], [3]

    def store(records):
        if refusals[0]:
            refusals[0] -= 1
            return False
        stored.extend(records)
        return True

    intake = DeadLetterIntake(amqp_uri, queue, "quorum", store, Scrubber(), pause_seconds=0.1)
    running = eventlet.spawn(intake.run)
    try:
        with connect(amqp_uri) as connection:
            channel = connection.channel()
            wait_until(lambda: queue_depth(amqp_uri, queue.name) == 0, 10, message="declared")
            for n in range(150):
                publish_confirmed(
                    channel,
                    Message(b"%d" % n, application_headers={"x-error": f"E: {n}"}),
                    queue.name,
                )
        # Generous: a loaded machine took over 30 s once.
        wait_until(lambda: len(stored) == 150, 120, message="every dead letter stored")
        assert [r.body for r in stored] == [b"%d" % n for n in range(150)]
        assert refusals == [0]
        assert list_queues(amqp_uri)[queue.name] == 0
    finally:
        intake.stop()
        running.wait()


def test_a_discard_is_final_and_logged(services, caplog):
    park(services, [MISSING + 1, MISSING + 2])
    gone, kept = sorted(listed(services), key=lambda letter: letter["order_id"])
    with caplog.at_level(logging.WARNING, logger="processor_service.dead_letters"):
        response, body = services.post("/dead-letters/discard", json={"ids": [gone["id"]]})
    assert (response.status_code, body) == (200, {"discarded": 1})
    assert_documented("/dead-letters/discard", "POST", response, body)
    (logged,) = [
        r.getMessage() for r in caplog.records if "discarded dead letter" in r.getMessage()
    ]
    assert gone["id"] in logged and str(MISSING + 1) in logged and "for good" in logged
    assert listed(services) == [kept]
    assert services.post("/dead-letters/replay", json={"ids": [gone["id"]]})[1] == {"replayed": 0}
    assert services.post("/dead-letters/discard", json={"ids": [gone["id"]]})[1] == {"discarded": 0}
    assert states(services) == {gone["id"]: "discarded", kept["id"]: "parked"}


def test_no_reason_shows_a_url_a_credential_a_host_or_an_address(make_database, make_vhost, caplog):
    """A price feed that fails, its URL carrying credentials and naming this
    machine: the reason kept, listed and streamed says what failed, and
    only the processor's log has the full text."""
    host = socket.gethostname()
    feed = f"http://feed-user:feed-secret@{host}:{free_port()}/price?token=tok-abcdef"
    services = InProcessServices(
        make_database(),
        make_vhost(),
        PRICE_SOURCE="http",
        PRICE_FEED_URL=feed,
        RETRY_MAX_ATTEMPTS=1,
    )
    secrets = [
        "feed-user",
        "feed-secret",
        "tok-abcdef",
        f"'{host}'",
        f"{host}:",
        "127.0.0.1",
        "://",
    ]
    try:
        services.start("generator", "processor", "gateway")
        add_orders(services, [MISSING])
        with caplog.at_level(logging.WARNING):
            park(services, [MISSING])
        (letter,) = listed(services)
        assert letter["error_type"] == "PriceUnavailable"
        assert letter["reason"].startswith(
            "gave up after 1 attempts: PriceUnavailable: price feed <url>"
        )
        assert letter["failing_frame"].startswith("processor_service/pricing.py:unit_price:")
        response, body = services.get("/dead-letters")
        reader = EventReader(services.base_url)
        try:
            snapshot = reader.snapshot_where(lambda s: s["dead_letters"]["count"] == 1)
        finally:
            reader.close()
        (row,) = dead_letter_rows(services.db_uri)
        kept = [row.reason, row.error_message, row.failures, row.headers]
        for shown in (response.text, json.dumps(snapshot), *kept):
            for secret in secrets:
                assert secret not in shown, (secret, shown)
        assert "tok-abcdef" in caplog.text  # the full text, in the processor's log only
    finally:
        services.stop_all()


def test_the_actions_need_the_token_and_named_dead_letters(services):
    park(services, [MISSING])
    for path in ("/dead-letters/replay", "/dead-letters/discard"):
        response, body = services.post(path, token=None, json={"ids": []})
        assert (response.status_code, body["error"]) == (401, "UNAUTHORIZED")
        response, body = services.post(path, token="wrong", json={"ids": []})
        assert (response.status_code, body["error"]) == (401, "UNAUTHORIZED")
        for bad in ({"ids": ["nope"]}, {"ids": "all"}, [1], {"ids": [], "more": 1}):
            response, body = services.post(path, json=bad)
            assert (response.status_code, body["error"]) == (400, "BAD_REQUEST"), bad
        response, body = services.post(path, data=b"{not json")
        assert (response.status_code, body["error"]) == (400, "BAD_REQUEST")
    response, body = services.post("/dead-letters/discard", json={})
    assert (response.status_code, body["error"]) == (400, "BAD_REQUEST")
    assert len(listed(services)) == 1


def test_bad_arguments_over_rpc_are_named_errors(services):
    with services.rpc() as rpc:
        for call in (
            lambda: rpc.order_processor.dead_letters(0),
            lambda: rpc.order_processor.replay_dead_letters("all"),
            lambda: rpc.order_processor.discard_dead_letters(None),
        ):
            with pytest.raises(InvalidArgument):
                call()


def test_with_the_processor_down_the_actions_are_503(services):
    services.stop("processor")
    response, body = services.get("/dead-letters")
    assert (response.status_code, body["error"]) == (503, "SERVICE_UNAVAILABLE")
    response, body = services.post("/dead-letters/replay", json={})
    assert (response.status_code, body["error"]) == (503, "SERVICE_UNAVAILABLE")

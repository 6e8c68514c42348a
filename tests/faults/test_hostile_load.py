"""The gateway under hostile and heavy HTTP load: slow headers, a mass
disconnect, more connections than it takes, and a burst of order lookups.

A generator and a processor run for the whole module; each scenario starts
a gateway of its own (`nameko run`, with the limits it needs), attacks it
from this process over 127.0.0.1, and judges it by what a well-behaved
client sees meanwhile (`Probe`: GET /health and GET /metrics in turn, one
at a time). The figures go to the table printed at the end of the run;
docs/hostile-load.md has them for one machine.

The issue's targets (an answer within 1 s during an attack, back to normal
within 2 s after) are measured and reported, not asserted: on a shared
machine they would fail at random, and so would any bound on seconds. What
is asserted is what a client is answered and in which order, which holds on
any machine and fails without the limits: before them, the slow connections
stayed open for a minute, the disconnect storm was handled as 1,200 health
checks (the probe waited 18 s), streams and busy connections had no cap,
and a burst in front of a stalled service queued for minutes.
"""

import json
import signal
import time
from collections import Counter

import eventlet
import pytest

from gateway.limits import REFUSAL_LINGER_SECONDS
from harness.processes import TEST_TOKEN, Pipeline, wait_until
from tests.faults.figures import AttackFigures, record_attack
from tests.faults.hostile import (
    Crowd,
    Probe,
    access_lines,
    burst,
    connections_held,
    get,
    rss_mib,
    seconds_until_normal,
    served_between,
    turned_away,
)
from tests.faults.traffic import create_orders, set_generation

ATTACKERS = 1200
# config.yml's defaults: with 1,200 slow connections opened within the
# header time limit, some are closed to make room as well.
HEADER_TIMEOUT = 10.0
RPC_TIMEOUT = 3.0
# For the burst in front of a stopped processor: GET /status must be seen
# answered between the first lookup shed (after REQUEST_QUEUE_SECONDS, 1 s)
# and the first lookup's RPC timeout, while every call slot is held. That
# window has to outlast a request to a gateway under the burst, which took
# 2.1 s on a slow machine: 8 s leaves room.
BURST_RPC_TIMEOUT = 8.0
INTERVAL = 0.2
# The start of the message of a 503 for a request that found no room within
# REQUEST_QUEUE_SECONDS (gateway/limits.py): shed, not queued.
NO_ROOM = "the gateway is busy (no room within"
# In the message of a 503 for an RPC call that was not answered in time
# (order_pipeline/rpc.py).
RPC_TIMED_OUT = "did not answer within"


@pytest.fixture(scope="module")
def backend(make_database, make_vhost, tmp_path_factory):
    """The generator and the processor, up for the module; no gateway."""
    pipeline = Pipeline(
        make_database(),
        make_vhost(),
        str(tmp_path_factory.mktemp("hostile")),
        ORDER_INTERVAL_SECONDS=INTERVAL,
        GENERATE_ON_FIRST_START="false",
    )
    try:
        pipeline.generator = pipeline.start_service("generator_service")
        pipeline.processor = pipeline.start_service("processor_service")
        yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture
def start_gateway(backend):
    """start_gateway(**settings): a gateway in front of the backend, once
    /health says both services answer; stopped after the test."""
    started = []

    def start(module="gateway", **settings):
        started.append(backend.start_service(module, **settings))
        backend.wait_healthy(timeout=60)
        return started[-1]

    yield start
    for process in started:
        process.stop()


def well_behaved_errors(answers):
    return sum(1 for answer in answers if answer.status != 200 or not answer.json_body)


def assert_well_served(probe):
    """Every request of the probe got a JSON 200 (none timed out, none was
    turned away). How long each took is a figure of the table, not a check."""
    assert probe.answers, "the probe sent nothing"
    assert probe.failures() == [], probe.failures()


def status_of(reply):
    """The status of a raw reply ("408"), or "closed" for none."""
    return reply.split(b" ", 2)[1].decode() if reply else "closed"


def json_error(reply):
    """The JSON error body of a raw reply (status line, headers, body)."""
    _, _, body = reply.partition(b"\r\n\r\n")
    return json.loads(body)


def test_slow_headers_are_cut_off_and_never_handled(backend, start_gateway):
    gateway = start_gateway(HEADER_TIMEOUT_SECONDS=HEADER_TIMEOUT)
    probe = Probe(backend.port).start()
    # A request line and one header each, then nothing (slowloris). More of
    # them than MAX_CONNECTIONS (1000): the oldest make room for others.
    crowd = Crowd(backend.port).open(ATTACKERS, b"GET /health?slow HTTP/1.1\r\nHost: x\r\n")
    crowd_in_place = time.monotonic()
    first_cut = []  # when the test first saw a slow connection cut off (408)

    def all_closed():
        if not first_cut and any(status_of(reply) == "408" for reply in crowd.replies()):
            first_cut.append(time.monotonic())
        return crowd.still_open() == 0

    # Without a header deadline they would stay open for a minute.
    wait_until(
        all_closed,
        HEADER_TIMEOUT + 30,
        interval=0.1,
        message="the gateway closing every slow connection",
    )
    probe.stop()
    normal_after = seconds_until_normal(backend.port)
    replies = crowd.replies()
    crowd.close()
    record_attack(
        AttackFigures(
            attack="slow headers",
            connections=crowd.tried,
            turned_away=crowd.refused,
            longest_wait_seconds=probe.longest(),
            errors=well_behaved_errors(probe.answers),
            normal_after_seconds=normal_after,
        )
    )

    statuses = Counter(status_of(reply) for reply in replies)
    print(
        f"slow connections: {statuses['408']} cut off with a 408, {statuses['closed']} closed "
        f"to make room, {statuses['503']} turned away with a 503 as they poured in"
    )

    assert len(replies) == ATTACKERS - crowd.refused
    assert set(statuses) <= {"408", "closed", "503"}, statuses
    errors = {json_error(reply)["error"] for reply in replies if reply}
    assert errors <= {"REQUEST_TIMEOUT", "SERVICE_UNAVAILABLE"}, errors
    assert access_lines(gateway, "GET /health?slow HTTP/1.1") == 0
    # Served throughout, but for the moment the attackers arrived faster
    # than MAX_CONNECTIONS per EVICT_AFTER_SECONDS: turned away at once then.
    # None waited for the slow connections to be cut off: the gateway made
    # room for a well-behaved request while they were all still held.
    assert all(a.status == 200 or turned_away(a) for a in probe.answers), probe.answers
    assert first_cut, statuses
    assert served_between(probe.answers, crowd_in_place, first_cut[0]), (
        "no well-behaved request served while the slow connections were held"
    )


def test_a_mass_disconnect_is_never_handled(backend, start_gateway):
    set_generation(backend.amqp_uri, False)
    # Room for every attacker, and time for them all to be open at once.
    gateway = start_gateway(HEADER_TIMEOUT_SECONDS=60, MAX_CONNECTIONS=2 * ATTACKERS)
    crowd = Crowd(backend.port)
    crowd.open(ATTACKERS - 10, b"GET /health?storm HTTP/1.1\r\nHost: x\r\n")
    # Were these handled, generation would be on.
    crowd.open(5, f"POST /start HTTP/1.1\r\nAuthorization: Bearer {TEST_TOKEN}\r\n".encode())
    crowd.open(5, b"GET /health?storm HTTP/1.1")  # cut inside the request line
    assert crowd.still_open() == ATTACKERS - crowd.refused
    probe = Probe(backend.port).start()
    eventlet.sleep(0.5)
    crowd.close()  # all at once
    # Handled as requests, the storm kept the gateway saturated for ~15 s.
    # Once the gateway has closed its side of every storm connection, it
    # has read each to its end and done whatever it was going to do with it
    # (the probe may hold one more).
    wait_until(
        lambda: connections_held(backend.port) <= 1,
        60,
        interval=0.2,
        message="the gateway done with every closed connection",
    )
    probe.stop()
    normal_after = seconds_until_normal(backend.port)
    record_attack(
        AttackFigures(
            attack="mass disconnect",
            connections=crowd.tried,
            turned_away=crowd.refused,
            longest_wait_seconds=probe.longest(),
            errors=well_behaved_errors(probe.answers),
            normal_after_seconds=normal_after,
        )
    )

    assert access_lines(gateway, "GET /health?storm HTTP/1.1") == 0
    assert access_lines(gateway, "POST /start HTTP/1.1") == 0
    status = get(backend.port, "/status")
    assert status.status == 200
    assert backend.get("/status").json()["running"] is False
    assert_well_served(probe)


MAX_CONNECTIONS = 30
MAX_STREAMS = 3
STREAM_REQUEST = b"GET /test-stream HTTP/1.1\r\nHost: x\r\n\r\n"


def test_connections_and_streams_over_their_limits_are_turned_away(backend, start_gateway):
    start_gateway(
        "tests.faults.streaming_gateway",
        MAX_CONNECTIONS=MAX_CONNECTIONS,
        MAX_STREAMS=MAX_STREAMS,
        RPC_TIMEOUT_SECONDS=RPC_TIMEOUT,
    )
    (order_id,) = create_orders(backend.amqp_uri, 1)
    probe = Probe(backend.port).start()

    # Streams: MAX_STREAMS open, the rest refused with a 503; the open ones
    # leave every connection place free.
    streams = Crowd(backend.port).open(MAX_STREAMS + 10, STREAM_REQUEST)
    wait_until(lambda: streams.still_open() == MAX_STREAMS, 30, message="extra streams refused")
    refused_streams = streams.replies()
    assert [json_error(reply)["error"] for reply in refused_streams] == ["SERVICE_UNAVAILABLE"] * 10
    open_streams = [c for c in streams.connections if c.reply() is None]
    assert all(c.received.startswith(b"HTTP/1.1 200 ") for c in open_streams)
    # Every other connection place, all at once (the probe holds one at
    # times; the refused streams' connections may still be lingering).
    answers = []

    def places_left_for_requests():
        answers[:] = burst(backend.port, ["/health"] * (MAX_CONNECTIONS - 1))
        return all(answer.status == 200 for answer in answers)

    wait_until(places_left_for_requests, 10, message=f"200s for {MAX_CONNECTIONS - 1} requests")

    # Connections that send nothing: the gateway holds at most
    # MAX_CONNECTIONS of them, and the streams flow on. (While they arrive
    # faster than MAX_CONNECTIONS per EVICT_AFTER_SECONDS, well-behaved
    # clients may be turned away too; once they stop coming, a
    # well-behaved client gets in although they stay connected.)
    idle = Crowd(backend.port).open(ATTACKERS)
    wait_until(
        lambda: idle.still_open() <= MAX_CONNECTIONS,
        10,
        message=f"at most {MAX_CONNECTIONS} idle connections open",
    )
    received = [len(c.received) for c in open_streams]
    wait_until(
        lambda: all(
            c.reply() is None and len(c.received) > n for c, n in zip(open_streams, received)
        ),
        10,
        message="the streams still flowing",
    )
    probe.stop()
    normal_after = seconds_until_normal(backend.port)
    assert idle.still_open() > 0  # the attacker is still there
    record_attack(
        AttackFigures(
            attack=f"connection limit ({MAX_CONNECTIONS}, {MAX_STREAMS} streams)",
            connections=streams.tried + idle.tried,
            turned_away=len(refused_streams) + (idle.tried - idle.still_open()),
            longest_wait_seconds=probe.longest(),
            errors=well_behaved_errors(probe.answers),
            normal_after_seconds=normal_after,
        )
    )
    assert all(a.status == 200 or turned_away(a) for a in probe.answers), probe.answers

    # Connections busy with a request (the processor is stopped, so an
    # order lookup that gets a worker waits for its RPC timeout): the ones
    # over the limit are turned away at once, not queued behind them; with
    # the idle flood's refusals done lingering, with a JSON 503.
    eventlet.sleep(2 * REFUSAL_LINGER_SECONDS)
    busy_probe = Probe(backend.port).start()
    backend.processor.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        answers = burst(backend.port, [f"/orders/{order_id}"] * (3 * MAX_CONNECTIONS))
        burst_seconds = time.monotonic() - started
        busy_probe.stop()
    finally:
        backend.processor.signal(signal.SIGCONT)
    idle.close()
    streams.close()
    refused = [answer for answer in answers if turned_away(answer)]
    admitted = [answer for answer in answers if not turned_away(answer)]
    print(
        f"lookups over the limit: {len(refused)} turned away at once "
        f"({sum(a.status is None for a in refused)} without an answer), "
        f"{len(admitted)} admitted; burst {burst_seconds:.1f} s; "
        f"longest probe {busy_probe.longest():.2f} s"
    )

    assert any(a.status == 503 for a in refused), "no JSON 503 for the connections over the limit"
    # The admitted ones: a JSON 503 when their RPC call or queue time ran out.
    assert all(a.status == 503 and a.json_body for a in admitted), admitted
    # Before the limits, 90 lookups queued behind 10 workers for 3 s each.
    # The ones over the limit did not wait for those let in: each of them
    # was answered before any admitted one.
    assert max(a.ended for a in refused) < min(a.ended for a in admitted), (refused, admitted)
    # The probe met the same full gateway: a JSON answer (none timed out),
    # or turned away at once.
    assert all(a.json_body or turned_away(a) for a in busy_probe.answers), busy_probe.answers


BURST = 500
RSS_GROWTH_MIB = 100


def test_a_burst_of_order_lookups_is_answered_or_shed_never_queued(
    backend, start_gateway, make_ledger
):
    gateway = start_gateway(RPC_TIMEOUT_SECONDS=BURST_RPC_TIMEOUT)
    ledger = make_ledger(backend.db_uri)
    order_ids = create_orders(backend.amqp_uri, 20)
    lookups = [
        f"/orders/{order_ids[i % len(order_ids)]}" if i % 2 else f"/orders/{10**12 + i}"
        for i in range(BURST)
    ]
    set_generation(backend.amqp_uri, True)
    try:
        memory_before = rss_mib(gateway.process.pid)

        # With the services up: every lookup answered, the probe not queued
        # behind them, and orders still processed as they come.
        committed, processed = ledger.committed(), ledger.processed()
        probe = Probe(backend.port).start()
        started = time.monotonic()
        answers = burst(backend.port, lookups, timeout=30)
        up_seconds = time.monotonic() - started
        probe.stop()
        committed_during = ledger.committed() - committed
        processed_during = ledger.processed() - processed
        fault_end = ledger.fault_ended()
        # The orders that came during the burst were processed as they came,
        # or soon after.
        recovery = ledger.wait_recovered(fault_end, timeout=10)

        # With the processor stopped: each lookup that gets a worker waits its
        # RPC timeout, the others a queue time; none waits for the ones before.
        # A client of the generator alone (GET /status) meanwhile.
        backend.processor.signal(signal.SIGSTOP)
        try:
            stalled_probe = Probe(backend.port).start()
            status_probe = Probe(backend.port, paths=("/status",)).start()
            started = time.monotonic()
            stalled = burst(backend.port, [lookups[i] for i in range(1, BURST, 2)] * 2, timeout=30)
            stalled_seconds = time.monotonic() - started
            stalled_probe.stop()
            status_probe.stop()
        finally:
            backend.processor.signal(signal.SIGCONT)
        normal_after = seconds_until_normal(backend.port)
    finally:
        set_generation(backend.amqp_uri, False)
    memory_after = rss_mib(gateway.process.pid)
    all_answers = answers + stalled
    record_attack(
        AttackFigures(
            attack=f"burst of {BURST} GET /orders/<id>",
            connections=len(all_answers),
            turned_away=sum(1 for answer in all_answers if answer.status == 503),
            longest_wait_seconds=probe.longest(),
            errors=well_behaved_errors(probe.answers)
            + sum(1 for answer in all_answers if not answer.json_body),
            normal_after_seconds=normal_after,
        )
    )
    print(
        f"burst, services up: {up_seconds:.1f} s, longest lookup "
        f"{max(a.seconds for a in answers):.2f} s, statuses "
        f"{sorted({a.status for a in answers})}, 503s {sum(a.status == 503 for a in answers)}; "
        f"orders committed {committed_during}, processed {processed_during}, "
        f"all processed {recovery:.1f} s after"
    )
    print(
        f"burst, processor stopped: {stalled_seconds:.1f} s, longest lookup "
        f"{max(a.seconds for a in stalled):.2f} s; longest probe {stalled_probe.longest():.2f} s"
    )
    print(f"gateway memory: {memory_before:.0f} MiB before, {memory_after:.0f} MiB after")

    # Every lookup answered (none timed out), with JSON.
    assert all(a.json_body and a.status in (200, 404, 503) for a in all_answers)
    assert all(a.status == 503 for a in stalled)
    # Before the limits, the lookups in front of the stalled processor
    # queued behind 10 workers for 3 s each. Now none waits for the ones
    # before: those that find no room within the queue time are shed, the
    # others wait for their RPC timeout ...
    shed = [a for a in stalled if a.message().startswith(NO_ROOM)]
    timed_out = [a for a in stalled if RPC_TIMED_OUT in a.message()]
    assert shed and timed_out and len(shed) + len(timed_out) == len(stalled), stalled
    # ... and a client of the generator alone is never queued behind them:
    # each of its requests was answered 200, some while every call slot was
    # held (from the first lookup shed to the first RPC timeout).
    assert status_probe.failures() == [], status_probe.failures()
    first_shed = min(a.ended for a in shed)
    first_timed_out = min(a.ended for a in timed_out)
    assert served_between(status_probe.answers, first_shed, first_timed_out), (
        first_shed,
        first_timed_out,
        status_probe.answers,
    )
    assert_well_served(probe)
    # Health says "degraded" only for the service that did not answer.
    health = [a for a in stalled_probe.answers if a.path == "/health"]
    assert health and all(a.status == 503 and a.json_body for a in health)
    assert {a.document()["status"] for a in health} == {"degraded"}
    assert {a.document()["services"]["order_generator"] for a in health} == {"ok"}
    assert memory_after - memory_before < RSS_GROWTH_MIB


def test_requests_right_behind_a_slow_header_crowd_are_answered_never_reset(backend, start_gateway):
    """1,200 slow-header connections, more than MAX_CONNECTIONS, then real
    requests right behind them, while the gateway is still taking the crowd
    from its accept queue: each real request gets an answer, a 200, or a
    JSON 503 if it came while the crowd filled every place; never a reset,
    nor a close without an answer (before, past 100 lingering refusals a
    connection was closed with its request unread: a reset)."""
    start_gateway(HEADER_TIMEOUT_SECONDS=HEADER_TIMEOUT)
    answers = []
    for _ in range(3):
        crowd = Crowd(backend.port).open(
            ATTACKERS, b"GET /health?slow HTTP/1.1\r\nHost: x\r\n", at_once=ATTACKERS
        )
        answers += burst(backend.port, ["/health"] * 24, timeout=30)
        crowd.close()
        wait_until(lambda: seconds_until_normal(backend.port) >= 0, 60, message="back to normal")

    unanswered = [answer for answer in answers if answer.status is None]
    assert unanswered == [], unanswered
    for answer in answers:
        assert answer.status in (200, 503) and answer.json_body, answer

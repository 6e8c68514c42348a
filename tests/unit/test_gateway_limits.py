"""gateway.limits on its own: the connection count and who makes room, the
stream slots a streaming route takes, the call slots and queue time of
costly routes, and the open-file limit. (The fault suite's
test_hostile_load has them in a running gateway under attack.)"""

import resource
import socket
import time

import eventlet
import pytest
from werkzeug.wrappers import Request

from gateway.errors import GatewayBusy
from gateway.limits import (
    CONNECTION_KEY,
    OTHER_OPEN_FILES,
    WORKERS_KEPT_FOR_CHEAP_ROUTES,
    Admission,
    Connections,
    Slots,
    StreamSlots,
    ensure_open_files,
    open_stream,
)
from gateway.settings import GatewayLimits
from order_pipeline.errors import StartupError


@pytest.fixture
def sockets():
    """make(): a connected socket pair (server side, client side); all
    closed after the test."""
    made = []

    def make():
        made.append(socket.socketpair())
        return made[-1]

    yield make
    for pair in made:
        for sock in pair:
            sock.close()


def server_closed(client):
    """True if the peer has shut the connection down (reads end of stream)."""
    client.settimeout(0.2)
    try:
        return client.recv(1) == b""
    except TimeoutError:
        return False


def test_slots_give_out_at_most_their_limit_and_take_each_back_once():
    slots = Slots(2)
    first, second = slots.try_acquire(), slots.try_acquire()
    assert first and second and slots.try_acquire() is None
    first.release()
    first.release()
    assert slots.in_use == 1
    assert slots.try_acquire() is not None
    assert slots.try_acquire() is None


def test_connections_over_the_limit_are_refused_while_none_is_idle(sockets):
    connections = Connections(2, StreamSlots(1), evict_after=0)
    first, second = connections.admit(sockets()[0]), connections.admit(sockets()[0])
    first.busy()
    second.busy()  # both have a request in hand
    assert connections.admit(sockets()[0]) is None
    first.close()
    assert connections.admit(sockets()[0]) is not None


def test_the_connection_waiting_longest_makes_room_for_a_new_one(sockets):
    connections = Connections(2, StreamSlots(1), evict_after=0)
    (old_server, old_client), (new_server, new_client) = sockets(), sockets()
    old = connections.admit(old_server)
    newer = connections.admit(new_server)
    old.waiting()
    newer.waiting()

    assert connections.admit(sockets()[0]) is not None
    assert server_closed(old_client)  # its reader sees the end of the stream
    assert not server_closed(new_client)
    assert connections.counted == 2
    old.close()  # when its greenthread finishes: counted once only
    assert connections.counted == 2


def test_a_connection_that_has_only_just_begun_waiting_keeps_its_place(sockets):
    connections = Connections(1, StreamSlots(1), evict_after=60)
    server, client = sockets()
    connections.admit(server).waiting()
    assert connections.admit(sockets()[0]) is None
    assert not server_closed(client)


def test_a_stream_gives_its_connection_place_back_and_holds_a_stream_slot(sockets):
    connections = Connections(1, StreamSlots(1), evict_after=0)
    streaming = connections.admit(sockets()[0])
    slot = streaming.open_stream()
    assert slot is not None and streaming.open_stream() is slot
    assert (connections.counted, connections.streams.in_use) == (0, 1)
    # Its place serves ordinary connections; the stream cannot be evicted.
    ordinary = connections.admit(sockets()[0])
    ordinary.waiting()
    assert ordinary is not None
    # No second stream while the first is open.
    assert ordinary.open_stream() is None
    assert connections.counted == 1
    # The route may end the stream first; closing the connection releases it too.
    slot.release()
    streaming.close()
    assert connections.streams.in_use == 0
    assert ordinary.open_stream() is not None


def test_closing_a_streaming_connection_releases_its_stream_slot(sockets):
    connections = Connections(1, StreamSlots(1))
    streaming = connections.admit(sockets()[0])
    streaming.open_stream()
    streaming.close()
    assert (connections.counted, connections.streams.in_use) == (0, 0)


def test_open_stream_takes_the_slot_of_the_requests_connection(sockets):
    connections = Connections(5, StreamSlots(1))
    first = connections.admit(sockets()[0])
    second = connections.admit(sockets()[0])
    slot = open_stream(Request({CONNECTION_KEY: first}))
    assert slot is first.stream and first.counted is False
    with pytest.raises(GatewayBusy) as busy:
        open_stream(Request({CONNECTION_KEY: second}))
    assert str(busy.value) == "too many open streams; try again later"
    assert second.counted is True


def test_open_stream_needs_a_request_read_by_the_gateway_protocol():
    with pytest.raises(RuntimeError):
        open_stream(Request({}))


def test_costly_requests_beyond_the_call_slots_wait_at_most_the_queue_time():
    admission = Admission(max_workers=4, queue_seconds=0.2)
    assert admission.call_slots == 4 - WORKERS_KEPT_FOR_CHEAP_ROUTES
    spawned = []
    held = [admission.start(True, lambda: spawned.append(1)) for _ in range(admission.call_slots)]

    started = time.monotonic()
    with pytest.raises(GatewayBusy):
        admission.start(True, lambda: spawned.append(1))
    assert 0.2 <= time.monotonic() - started < 5
    assert len(spawned) == admission.call_slots  # the refused one never got a worker
    # A cheap route does not wait for a call slot.
    admission.start(False, lambda: spawned.append(1)).release()
    # A slot given back admits the next costly request.
    held[0].release()
    held[0].release()  # once only
    held[0] = admission.start(True, lambda: None)
    with pytest.raises(GatewayBusy):
        admission.start(True, lambda: None)


def test_a_request_that_gets_no_worker_in_time_gives_its_call_slot_back():
    admission = Admission(max_workers=3, queue_seconds=0.1)
    assert admission.call_slots == 1
    with pytest.raises(GatewayBusy):
        admission.start(True, lambda: eventlet.sleep(5))  # no worker free
    admission.start(True, lambda: None).release()


def limits(max_connections, max_streams=0):
    return GatewayLimits(
        max_connections=max_connections,
        max_streams=max_streams,
        header_timeout_seconds=10,
        request_queue_seconds=1,
    )


def test_the_open_file_limit_is_raised_to_fit_the_connections():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no soft open-file limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 50, hard))
    try:
        assert ensure_open_files(limits(soft - OTHER_OPEN_FILES)) == soft
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
        # Already enough: left as it is.
        assert ensure_open_files(limits(10)) == soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_more_connections_than_the_process_may_open_is_a_startup_error_naming_the_setting():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-file limit")
    with pytest.raises(StartupError) as error:
        ensure_open_files(limits(hard, max_streams=5))
    assert str(error.value).startswith(f"MAX_CONNECTIONS={hard} and MAX_STREAMS=5 need ")
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)

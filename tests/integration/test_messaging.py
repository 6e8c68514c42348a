"""The messaging extensions against a real RabbitMQ vhost of the test's own:
the routed-event publisher, the retrying, dead-lettering handler, and the
RPC proxy that gives up."""

import time
from types import SimpleNamespace

import pytest
from eventlet.event import Event
from kombu import Connection, Exchange, Queue
from nameko.containers import ServiceContainer
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher

from harness.broker import list_queues, take_messages
from harness.processes import wait_until
from order_contract import DEAD_LETTERED, RETRIED
from order_pipeline.errors import StartupError
from order_pipeline.extensions.event_publisher import RoutedEventPublisher
from order_pipeline.extensions.reliable_events import (
    PermanentFailure,
    ReliableEventHandler,
)
from order_pipeline.extensions.rpc_proxy import TimeoutRpcProxy
from order_pipeline.failures import read_failures
from order_pipeline.times import parse_iso_z
from tests.faults.retry_log import retries


def publisher_for(amqp_uri, service_name="publisher_test"):
    publisher = RoutedEventPublisher()
    publisher.container = SimpleNamespace(config={"AMQP_URI": amqp_uri}, service_name=service_name)
    publisher.setup()
    return publisher


def test_an_event_nobody_listens_for_is_reported_unrouted(amqp_uri):
    publisher = publisher_for(amqp_uri)
    try:
        assert publisher.publish("Thing", [{"n": 1}, {"n": 2}]) == [False, False]
    finally:
        publisher.stop()


def test_an_event_with_a_bound_queue_is_reported_routed_and_arrives(amqp_uri):
    publisher = publisher_for(amqp_uri)
    try:
        with Connection(amqp_uri) as connection:
            Queue(
                "listener",
                Exchange("publisher_test.events", type="topic"),
                routing_key="Thing",
                durable=True,
            )(connection.channel()).declare()
        assert publisher.publish("Thing", [{"n": 1}, {"n": 2}]) == [True, True]
        assert [m.payload for m in take_messages(amqp_uri, "listener")] == [{"n": 1}, {"n": 2}]
        # Unroutable and routed events interleave without confusing the confirms.
        assert publisher.publish("Other", [{"n": 3}]) == [False]
        assert publisher.publish("Thing", [{"n": 4}]) == [True]
    finally:
        publisher.stop()


def test_an_unreachable_broker_is_a_one_line_configuration_error():
    with pytest.raises(StartupError) as error:
        publisher_for("amqp://guest:guest@127.0.0.1:1/")
    message = str(error.value)
    assert "AMQP_URI=amqp://guest:********@127.0.0.1:1/" in message
    assert "\n" not in message


class SetAsideLog(DependencyProvider):
    """Listens to the service's handler as the processor's counter does,
    behind a listener that always raises: a broken listener must not keep a
    message from being settled."""

    outcomes = []

    def setup(self):
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, ReliableEventHandler):
                entrypoint.add_set_aside_listener(self.broken)
                entrypoint.add_set_aside_listener(SetAsideLog.outcomes.append)

    @staticmethod
    def broken(outcome):
        raise RuntimeError("a listener with a bug")


class FlakyService:
    """Fails transiently twice for "transient", always for "permanent"."""

    name = "flaky"
    calls = []
    set_asides = SetAsideLog()

    @ReliableEventHandler.decorator("source", "Thing")
    def handle(self, payload):
        FlakyService.calls.append((payload["kind"], time.monotonic()))
        attempts = sum(1 for kind, _ in FlakyService.calls if kind == payload["kind"])
        if payload["kind"] == "permanent":
            raise PermanentFailure("can never work")
        if payload["kind"] == "transient" and attempts <= 2:
            raise RuntimeError("database is down")
        if payload["kind"] == "forever":
            raise RuntimeError("still down")


QUEUE = "evt-source-Thing--flaky.handle"


def messages_held(amqp_uri):
    """{queue: messages} of the handler's queues (its own, the retry
    queues, the dead letters) that hold any, ready or being handled."""
    return {
        name: count
        for name, count in list_queues(amqp_uri).items()
        if name.startswith(QUEUE) and count
    }


@pytest.fixture
def flaky(amqp_uri):
    FlakyService.calls = []
    SetAsideLog.outcomes = []
    config = {
        "AMQP_URI": amqp_uri,
        "QUEUE_TYPE": "classic",
        "RETRY_FIRST_DELAY_SECONDS": 0.2,
        "RETRY_MAX_DELAY_SECONDS": 0.4,
        "RETRY_MAX_ATTEMPTS": 4,
    }
    container = ServiceContainer(FlakyService, config)
    container.start()
    yield lambda kind: event_dispatcher(config)("source", "Thing", {"kind": kind})
    container.stop()


def calls(kind):
    return [at for k, at in FlakyService.calls if k == kind]


def test_a_transient_failure_is_retried_with_growing_delays(flaky, amqp_uri, caplog):
    flaky("transient")
    wait_until(lambda: len(calls("transient")) == 3, 30, message="third attempt")
    # Retried after 0.2 s, then 0.4 s, and each delay was waited out.
    assert retries([caplog.text]) == [(1, 0.2), (2, 0.4)]
    first, second, third = calls("transient")
    assert second - first >= 0.2
    assert third - second >= 0.4
    # Once the third attempt's message is settled, nothing of it is left on
    # the handler's queue, a retry queue or the dead letters: it succeeded
    # and is not retried again.
    wait_until(lambda: not messages_held(amqp_uri), 30, message="the third attempt settled")
    assert len(calls("transient")) == 3
    assert SetAsideLog.outcomes == [RETRIED, RETRIED]


def test_a_permanent_failure_is_dead_lettered_at_once_with_its_reason(flaky, amqp_uri):
    flaky("permanent")
    messages = wait_until(
        lambda: take_messages(amqp_uri, QUEUE + ".dead-letter"), 30, message="dead-lettered message"
    )
    assert len(calls("permanent")) == 1
    assert [m.payload for m in messages] == [{"kind": "permanent"}]
    assert messages[0].headers["x-error"] == "PermanentFailure: can never work"
    wait_until(lambda: SetAsideLog.outcomes == [DEAD_LETTERED], 10, message="one dead letter told")


def test_a_message_that_keeps_failing_is_parked_after_the_attempt_limit(flaky, amqp_uri):
    flaky("forever")
    messages = wait_until(
        lambda: take_messages(amqp_uri, QUEUE + ".dead-letter"), 30, message="parked message"
    )
    assert len(calls("forever")) == 4
    assert messages[0].headers["x-error"] == "gave up after 4 attempts: RuntimeError: still down"
    # Each failure went along with the message, with where it failed.
    history = read_failures(messages[0].headers["x-failures"])
    assert [(f.error_type, f.message) for f in history] == [("RuntimeError", "still down")] * 4
    assert {f.frame.rsplit(":", 1)[0] for f in history} == {
        "tests/integration/test_messaging.py:handle"
    }
    assert [parse_iso_z(f.at) for f in history] == sorted(parse_iso_z(f.at) for f in history)
    wait_until(
        lambda: SetAsideLog.outcomes == [RETRIED] * 3 + [DEAD_LETTERED],
        10,
        message="three retries and a dead letter told",
    )
    # Not a hot loop: four attempts took at least 0.2 + 0.4 + 0.4 s.
    spread = calls("forever")[-1] - calls("forever")[0]
    assert spread >= 1.0


class Sleeper:
    name = "sleeper"
    alarm = None  # an Event that cuts every nap short

    @rpc
    def nap(self, seconds):
        Sleeper.alarm.wait(seconds)
        return "rested"


class Caller:
    name = "caller"
    sleeper = TimeoutRpcProxy("sleeper")

    @rpc
    def call(self, seconds):
        return self.sleeper.nap(seconds)


def test_an_rpc_call_gives_up_after_the_timeout_and_forgets_the_reply(amqp_uri):
    from nameko.standalone.rpc import ClusterRpcProxy
    from nameko.testing.utils import get_extension

    from order_pipeline.extensions.rpc_proxy import RpcTimeout

    timeout = 0.5
    Sleeper.alarm = Event()
    config = {
        "AMQP_URI": amqp_uri,
        "QUEUE_TYPE": "classic",
        "RPC_REPLY_QUEUE_EXPIRES_SECONDS": 300,
        "RPC_TIMEOUT_SECONDS": timeout,
    }
    containers = [ServiceContainer(cls, config) for cls in (Sleeper, Caller)]
    for container in containers:
        container.start()
    try:
        proxy = get_extension(containers[1], TimeoutRpcProxy)
        with ClusterRpcProxy(config, timeout=60) as rpc:
            assert rpc.caller.call(0) == "rested"
            started = time.monotonic()
            with pytest.raises(RpcTimeout):
                rpc.caller.call(30)
            # Gave up, however busy the machine, long before the answer.
            assert timeout <= time.monotonic() - started < timeout + 5
        assert proxy.rpc_reply_listener._reply_events == {}
    finally:
        Sleeper.alarm.send()
        for container in containers:
            container.stop()

"""The broker goes away, or has nowhere to route events yet."""

import logging
from datetime import timedelta

import eventlet
from eventlet.event import Event
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy

from generator_service.generation import OUTBOX_GRACE
from harness.processes import free_port, wait_until
from order_pipeline.extensions.rpc import rpc
from order_pipeline.times import utc_now
from tests.faults.ledger import audit
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import set_generation
from tests.support.prometheus import wait_for_workers

INTERVAL = 0.05
OUTAGE_INTERVAL = 0.5
HUNG_SECONDS = DOWN_SECONDS = 5
# An order per tick while the broker is away: consecutive orders (and the
# outage's edges) are at most this far apart. Timer jitter and a slow tick
# on a busy machine fit; a tick that waits on the absent broker does not.
MAX_GAP_SECONDS = 3 * OUTAGE_INTERVAL + 1


def longest_gap(moments):
    """(seconds, start) of the longest gap between consecutive moments."""
    return max(
        ((later - earlier).total_seconds(), earlier) for earlier, later in zip(moments, moments[1:])
    )


def test_broker_hung_then_restarted_mid_stream_delays_no_order_and_loses_none(
    private_rabbit, make_database, make_pipeline, make_ledger
):
    db_uri, amqp_uri = make_database(), private_rabbit.amqp_uri
    system = make_pipeline(db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=OUTAGE_INTERVAL).start()
    ledger = make_ledger(db_uri)
    wait_until(lambda: ledger.processed() >= 3, 30, message="processing under way")

    # The broker first hangs (connections open but nothing answers), then
    # goes away altogether, then comes back.
    outage_start = utc_now()
    private_rabbit.freeze()
    eventlet.sleep(HUNG_SECONDS)
    private_rabbit.stop()
    eventlet.sleep(DOWN_SECONDS)
    outage_end = utc_now()
    # Events of the orders created meanwhile wait in the outbox.
    assert ledger.outbox_size() > 0
    private_rabbit.start()
    fault_end = ledger.fault_ended()

    # The timer kept creating an order per tick throughout: no tick waited
    # on the broker.
    created = ledger.creation_times(outage_start, outage_end)
    gap, after = longest_gap([outage_start, *created, outage_end])
    assert gap <= MAX_GAP_SECONDS, (
        f"no order for {gap:.1f} s from {after} (outage {outage_start} to {outage_end})"
    )
    # Nobody restarts the services: they reconnect by themselves.
    recovery = ledger.wait_recovered(fault_end, timeout=60)
    system.wait_healthy()
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    audit(
        "RabbitMQ hung, then restarted",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )


def test_orders_created_before_any_processor_ran_are_processed_when_one_starts(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    # A fresh vhost: no processor has ever bound its queue, so the broker
    # has nowhere to route OrderCreated and returns every event.
    metrics_port = free_port()
    system = make_pipeline(
        db_uri,
        amqp_uri,
        ORDER_INTERVAL_SECONDS=INTERVAL * 2,
        GENERATOR_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
    )
    system.generator = system.start_service("generator_service")
    system.gateway = system.start_service("gateway")
    ledger = make_ledger(db_uri)
    wait_until(lambda: ledger.committed() >= 15, 30, message="orders created")
    # The relay takes the rows older than its grace: once the first order
    # is that old, the second relay pass to finish (begun after the first
    # ended) has tried its event, as the background publisher did at once.
    wait_until(
        lambda: ledger.scalar(
            "SELECT MIN(created_at) < UTC_TIMESTAMP(6) - INTERVAL :grace MICROSECOND FROM orders",
            grace=OUTBOX_GRACE // timedelta(microseconds=1),
        ),
        30,
        message="the first order older than the relay's grace",
    )
    wait_for_workers(metrics_port, "relay_outbox", 2)
    unannounced = ledger.scalar(
        "SELECT (SELECT COUNT(*) FROM order_outbox) = (SELECT COUNT(*) FROM orders)"
    )
    assert unannounced, "an order's outbox row was cleared with no queue to route it"

    system.processor = system.start_service("processor_service")
    fault_end = ledger.fault_ended()
    recovery = ledger.wait_recovered(fault_end)
    system.wait_healthy()
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    audit(
        "orders before any processor ran",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )


class Napper:
    """A service whose one call runs until the test lets it finish."""

    name = "napper"
    napping = finish = None  # Events

    @rpc
    def nap(self):
        if not Napper.napping.ready():
            Napper.napping.send()
        Napper.finish.wait()
        return "rested"


def test_a_reply_the_broker_cannot_take_does_not_stop_the_service(private_rabbit, caplog):
    Napper.napping, Napper.finish = Event(), Event()
    config = {"AMQP_URI": private_rabbit.amqp_uri, "QUEUE_TYPE": "classic"}
    container = ServiceContainer(Napper, config)
    container.start()
    ended = eventlet.spawn(container.wait)  # returns (or raises) once the service is dead
    try:
        with ClusterRpcProxy(config) as cluster:
            cluster.napper.nap.call_async()
            with eventlet.Timeout(30):
                Napper.napping.wait()
        private_rabbit.stop()
        with caplog.at_level(logging.WARNING):
            Napper.finish.send()  # the call ends with the broker away
            wait_until(
                lambda: ended.dead or "its reply could not be sent" in caplog.text,
                60,
                message="the reply given up (or the service dead)",
            )
        assert not ended.dead, "the service stopped"
        private_rabbit.start()
        # It reconnects by itself and answers the next call.
        with ClusterRpcProxy(config, timeout=60) as cluster:
            assert cluster.napper.nap() == "rested"
    finally:
        with eventlet.Timeout(30, False):  # a dead container's kill can hang
            container.kill()
        if private_rabbit.process is None:  # left stopped: the next scenario needs it
            private_rabbit.start()

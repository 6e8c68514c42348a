"""How fast orders get in: create_order with many calls in flight,
create_orders in bulk, and the timer at a 1 ms interval, each beside the
ceiling measured in the same run (a do-nothing RPC method on a service of
its own, called by the same client).

The client is bench.rpc_load, nameko's RPC protocol over py-amqp in a
process of its own, with no confirm wait per request (nameko's
ClusterRpcProxy waits for one on every request, which made its do-nothing
figure its own limit). That the ceiling is not this client's either is
checked in the run: the do-nothing method is loaded by one client process
and then by two sharing the same calls in flight, and the client's CPU is
read (`client_limits`). The ratio is read against the higher of the two
do-nothing rates, so a client limit could only lower it.

No processor runs, but its OrderCreated queue is declared, with no consumer,
so that the generator's events are routed as in a deployment: with no queue
bound, every event came back unroutable and stayed in the outbox, and the
generator published those rows again, 500 at a time, on every pass and
every relay while it was being measured.
"""

import time

from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange

from bench.noop_service import NOOP
from bench.process_stats import cpu_seconds, peak_rss_by_service, server_pids
from bench.rpc_clients import rpc_load
from harness.sandbox import rpc_proxy, sandbox, wait_for_rpc
from harness.tables import order_count
from order_contract import GENERATOR, ORDER_CREATED, ORDER_CREATED_QUEUE

BULK_SIZE = 100
BULK_IN_FLIGHT = 8
# The timer's second run: ORDERS_PER_TICK, what lifts its rate.
ORDERS_PER_TICK = 10
# A client process busy for half a core or more could be what limits the
# ceiling on a 2-core machine that also runs the services and the broker.
CLIENT_CPU_LIMIT_CORES = 0.5
# A second client process raising the do-nothing rate by more than this
# (more than the run-to-run noise here) says one process was the limit.
SECOND_CLIENT_GAIN_LIMIT = 1.1
# The events queue keeps the newest this many (the broker drops the oldest),
# so that a long bulk run does not pile up a backlog no one drains.
EVENTS_KEPT = 10_000


def client_limits(cpu_cores, second_client_gain):
    """Why the do-nothing ceiling may be the RPC client's limit rather than
    the service's: the one client process used half a core or more, or a
    second process sharing the same calls in flight raised the rate by more
    than run noise. [] when neither says so; None when neither was measured."""
    if cpu_cores is None and second_client_gain is None:
        return None
    reasons = []
    if cpu_cores is not None and cpu_cores >= CLIENT_CPU_LIMIT_CORES:
        reasons.append(f"one client process used {cpu_cores:.2f} cores")
    if second_client_gain is not None and second_client_gain > SECOND_CLIENT_GAIN_LIMIT:
        reasons.append(f"a second client process raised the rate {second_client_gain:.2f} x")
    return reasons


def declare_events_queue(amqp_uri):
    """The processor's OrderCreated queue, bound as the processor binds it,
    keeping at most EVENTS_KEPT events."""
    with Connection(amqp_uri) as connection:
        Queue(
            ORDER_CREATED_QUEUE,
            exchange=get_event_exchange(GENERATOR, {}),
            routing_key=ORDER_CREATED,
            durable=True,
            queue_arguments={"x-max-length": EVENTS_KEPT},
        )(connection.default_channel).declare()


def timer_rate(pipeline, seconds, orders_per_tick):
    """Orders per second the timer creates at a 1 ms interval."""
    generator = pipeline.start_service(
        "generator_service", ORDER_INTERVAL_SECONDS="0.001", ORDERS_PER_TICK=orders_per_tick
    )
    wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])
    with rpc_proxy(pipeline.amqp_uri) as proxy:
        proxy.order_generator.start()
        started, first = time.monotonic(), order_count(pipeline.db_uri)
        time.sleep(seconds)
        last, ended = order_count(pipeline.db_uri), time.monotonic()
        proxy.order_generator.stop()
    generator.stop()
    return (last - first) / (ended - started)


def run_ingest(log_dir, seconds, timer_seconds, two_clients_first=False):
    """One ingest run. The two do-nothing loads take turns going first
    (`two_clients_first`) over repeated runs, so that a change in the
    machine's load does not always favour the same one."""
    with sandbox(log_dir, GENERATE_ON_FIRST_START="false") as pipeline:
        declare_events_queue(pipeline.amqp_uri)
        noop = pipeline.start_service("bench.noop_service")
        generator = pipeline.start_service("generator_service")
        wait_for_rpc(pipeline.amqp_uri, NOOP, "noop", [noop])
        wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])

        servers = server_pids()

        def load(process, service, method, *args, **options):
            """rpc_load, with the CPU per call of the service's process and
            of the broker and database servers over the whole load."""
            pids = {"service": process.process.pid, **servers}
            before = {label: cpu_seconds(pid) for label, pid in pids.items()}
            result = rpc_load(pipeline.amqp_uri, service, method, args, seconds=seconds, **options)
            after = {label: cpu_seconds(pid) for label, pid in pids.items()}
            result["cpu_ms_per_call"] = {
                label: (after[label] - before[label]) / result["answered"] * 1000
                for label in pids
                if result["answered"] and None not in (before[label], after[label])
            }
            return result

        order = (2, 1) if two_clients_first else (1, 2)
        noop_loads = {n: load(noop, NOOP, "noop", processes=n) for n in order}
        noop_one, noop_two = noop_loads[1], noop_loads[2]
        single = load(generator, "order_generator", "create_order", 3)
        bulk = load(
            generator,
            "order_generator",
            "create_orders",
            [3] * BULK_SIZE,
            in_flight=BULK_IN_FLIGHT,
        )
        memory = peak_rss_by_service([("order_generator", generator)])
        generator.stop()
        created = order_count(pipeline.db_uri)
        answered = single["answered"] + bulk["answered"] * BULK_SIZE
        if created != answered:
            raise RuntimeError(f"{created} orders in the table, {answered} answered as created")
        timer = timer_rate(pipeline, timer_seconds, 1)
        timer_batched = timer_rate(pipeline, timer_seconds, ORDERS_PER_TICK)
    return summarise(noop_one, noop_two, single, bulk) | {
        "seconds": seconds,
        "timer_orders_per_second": timer,
        "timer_batched_orders_per_second": timer_batched,
        "peak_rss_mb": memory,
    }


def summarise(noop_one, noop_two, single, bulk):
    """The run's figures from the four loads' combined figures. The ceiling
    is the higher of the two do-nothing rates."""
    one, two = noop_one["calls_per_second"], noop_two["calls_per_second"]
    ceiling = max(one, two)
    gain = two / one if one else None
    return {
        "noop_calls_per_second": one,
        "noop_two_clients_calls_per_second": two,
        "noop_client_cpu_cores": noop_one["client_cpu_cores"],
        "noop_two_clients_cpu_cores": noop_two["client_cpu_cores"],
        "ceiling_calls_per_second": ceiling,
        "second_client_gain": gain,
        "ceiling_client_limits": client_limits(noop_one["client_cpu_cores"], gain),
        "create_order_per_second": single["calls_per_second"],
        "create_order_client_cpu_cores": single["client_cpu_cores"],
        "create_order_ratio": single["calls_per_second"] / ceiling if ceiling else None,
        "create_orders_per_second": BULK_SIZE * bulk["calls_per_second"],
        # CPU per call of the do-nothing service and of the generator, and
        # of the servers, each beside the other: where create_order's cost is.
        "noop_cpu_ms_per_call": noop_one.get("cpu_ms_per_call", {}),
        "create_order_cpu_ms_per_call": single.get("cpu_ms_per_call", {}),
        "clients": {"noop": noop_one, "noop_two": noop_two, "create_order": single, "bulk": bulk},
    }

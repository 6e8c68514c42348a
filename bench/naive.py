"""Scenario: the same backlog drained by the naive nameko pipeline
(bench/naive_services.py: one event, one RPC and one commit per order) and
by this project's processor, one processor each, in the same run; the
ratio of the two rates is what the pipeline's design buys on this machine.

Both drains are bench.drain's: a fresh database and vhost each, the backlog
committed and queued before the processor starts, the rate read from
order_process.processed_at. The two take turns going first over repeated
runs, so a change in the shared machine's load falls on both.
"""

import os

from bench.drain import Drained, run_drain
from bench.naive_services import GENERATOR_CLASS, NAIVE_GENERATOR, NAIVE_PROCESSOR, PROCESSOR_CLASS
from harness.broker import order_created_queues
from harness.processes import wait_until
from harness.sandbox import check_running, wait_for_rpc

# Stock nameko throughout: config.yml names the services' own container.
STOCK_CONTAINER = "nameko.containers.ServiceContainer"


def _naive_ready(pipeline, generator, primer):
    # get_order(0) answers None: the generator is consuming its RPC queue.
    wait_for_rpc(pipeline.broker, NAIVE_GENERATOR, "get_order", [generator], args=(0,))

    def bound():
        check_running([primer])
        return order_created_queues(
            pipeline.amqp_uri, pipeline.servers.rabbitmqctl, source=NAIVE_GENERATOR
        )

    wait_until(bound, 60, interval=0.2, message=f"{NAIVE_PROCESSOR}'s OrderCreated queue")


NAIVE = Drained(
    GENERATOR_CLASS,
    PROCESSOR_CLASS,
    NAIVE_GENERATOR,
    NAIVE_PROCESSOR,
    _naive_ready,
    {"SERVICE_CONTAINER_CLS": STOCK_CONTAINER},
)


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def run_naive_comparison(log_dir, orders, naive_first=True):
    """Drain `orders` through the naive pair, then through the project's
    processor (the other way round with `naive_first` false)."""
    drains = {
        "naive": lambda: run_drain(os.path.join(log_dir, "naive"), orders, 1, drained=NAIVE),
        "pipeline": lambda: run_drain(os.path.join(log_dir, "pipeline"), orders, 1),
    }
    turns = ("naive", "pipeline") if naive_first else ("pipeline", "naive")
    runs = {name: drains[name]() for name in turns}
    return {
        "orders": orders,
        "first": turns[0],
        **runs,
        "ratio": ratio(runs["pipeline"]["orders_per_second"], runs["naive"]["orders_per_second"]),
    }

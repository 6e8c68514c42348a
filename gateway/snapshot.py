"""The console's snapshot: everything an open page shows, read once per
interval for all pages.

Every figure comes from the service that owns it, over RPC; the gateway
touches no table. Where each one comes from:

- generator: running, interval, orders created (`order_generator.status`),
  outbox backlog (`order_generator.outbox_backlog`);
- figures: orders processed and average execution price
  (`order_processor.metrics`), in flight = created - processed, dead-lettered
  (`order_processor.dead_letter_overview`: the processor's table, so null
  while the processor is down);
- charts: `gateway.charts.ChartWindow`, fed by
  `order_generator.created_per_second` and `order_processor.processed_per_second`;
- recent orders: `order_generator.recent_orders` joined with
  `order_processor.get_results`; latency = processed_at - created_at;
- services: each service is "up" when it answered, "down" when it is not
  running or did not answer in time, "error" when it answered with an
  error; consumers and depth of the processor's event queue from the broker
  (`gateway.queue_figures`);
- instances and timing: `order_processor.service_instances` with each
  instance's state, and `order_processor.service_timing` (`gateway.monitoring`).

All reads but the last (which needs the recent orders' ids) run at once,
so a snapshot takes about one round trip, or one RPC timeout when a service
is down. A figure nobody could read is null, never a guess.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import eventlet
from nameko.extensions import DependencyProvider

from gateway.charts import ChartWindow
from gateway.monitoring import console_view, read_instances
from gateway.settings import instance_rules
from order_contract import DEFAULT_DEAD_LETTER_LIMIT, RECENT_ORDERS
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable
from order_pipeline.times import iso_z_of_epoch

log = logging.getLogger(__name__)

UP, DOWN, ERROR = "up", "down", "error"


@dataclass(frozen=True)
class Answer:
    state: str  # UP, DOWN or ERROR
    value: object = None

    @property
    def up(self):
        return self.state == UP


def ask(call, *args) -> Answer:
    try:
        return Answer(UP, call(*args))
    except (RpcTimeout, ServiceUnavailable):
        return Answer(DOWN)
    except Exception as exc:  # shown as "error" on the page; the reason goes to the log
        log.warning("console read %s failed: %s: %s", call, type(exc).__name__, exc)
        return Answer(ERROR)


def ask_all(calls: dict) -> dict:
    """{key: (call, *args)} asked all at once: {key: Answer}."""
    running = {key: eventlet.spawn(ask, *call) for key, call in calls.items()}
    return {key: thread.wait() for key, thread in running.items()}


def dead_letter_count(dead_letters: Answer) -> int | None:
    """How many dead letters are parked (`dead_letter_overview`, from the
    processor's table), or None. The dead-letter queue is no count of them:
    it holds only those not yet moved into the table."""
    return dead_letters.value["count"] if dead_letters.up else None


def read_snapshot(
    generator, processor, queue_figures, window: ChartWindow, instance_rules, now=None
) -> dict:
    now = time.time() if now is None else now
    since_created = window.since("created", now)
    since_processed = window.since("processed", now)
    calls = {
        "status": (generator.status,),
        "backlog": (generator.outbox_backlog,),
        "recent": (generator.recent_orders, RECENT_ORDERS),
        "created": (generator.created_per_second, since_created),
        "metrics": (processor.metrics,),
        "processed": (processor.processed_per_second, since_processed),
        "dead_letters": (processor.dead_letter_overview, DEFAULT_DEAD_LETTER_LIMIT),
        "queues": (queue_figures,),
        "instances": (read_instances(processor, instance_rules),),
        "timing": (processor.service_timing,),
    }
    answers = ask_all(calls)
    results = Answer(DOWN)
    if answers["recent"].up and answers["recent"].value:
        order_ids = [order["id"] for order in answers["recent"].value]
        results = ask(processor.get_results, order_ids)
    if answers["created"].up:
        window.update(
            "created", since_created, {second: n for second, n in answers["created"].value}, now
        )
    if answers["processed"].up:
        figures = {row["second"]: row for row in answers["processed"].value}
        window.update("processed", since_processed, figures, now)
    snapshot = assemble(answers, results, window.series(now), now)
    return {**snapshot, **console_view(answers["instances"], answers["timing"])}


def assemble(answers: dict, results: Answer, charts: dict, now: float) -> dict:
    """The snapshot from the services' answers (pure: no I/O)."""
    status, metrics = answers["status"], answers["metrics"]
    queues, dead_letters = answers["queues"], answers["dead_letters"]
    created = status.value["orders_created"] if status.up else None
    processed = metrics.value["total_orders_processed"] if metrics.up else None
    dead_count = dead_letter_count(dead_letters)
    return {
        "at": iso_z_of_epoch(now),
        "services": {
            "generator": status.state,
            "processor": metrics.state,
            "broker": queues.state,
            "consumers": queues.value["consumers"] if queues.up else None,
            "queue_depth": queues.value["queue_depth"] if queues.up else None,
            "outbox_backlog": answers["backlog"].value if answers["backlog"].up else None,
        },
        "generator": {
            "running": status.value["running"] if status.up else None,
            "interval_seconds": status.value["interval_seconds"] if status.up else None,
            "orders_created": created,
        },
        "figures": {
            "total_orders_processed": processed,
            "average_execution_price": (
                metrics.value["average_execution_price"] if metrics.up else None
            ),
            "orders_created": created,
            # Read a moment apart: never shown below zero.
            "in_flight": None if None in (created, processed) else max(created - processed, 0),
            "dead_lettered": dead_count,
        },
        "charts": charts,
        "recent_orders": recent_orders(answers["recent"], results),
        "dead_letters": {
            "state": dead_letters.state,
            "count": dead_count,
            "items": dead_letters.value["dead_letters"] if dead_letters.up else [],
        },
    }


def recent_orders(recent: Answer, results: Answer) -> list:
    if not recent.up:
        return []
    by_order = {result["order_id"]: result for result in results.value} if results.up else {}
    rows = []
    for order in recent.value:
        result = by_order.get(order["id"])
        rows.append(
            {
                "id": order["id"],
                "quantity": order["quantity"],
                "created_at": order["created_at"],
                "unit_price": result and result["unit_price"],
                "execution_price": result and result["execution_price"],
                "processed_at": result and result["processed_at"],
                "latency_ms": result and latency_ms(order["created_at"], result["processed_at"]),
            }
        )
    return rows


def latency_ms(created_at: str, processed_at: str) -> float:
    elapsed = datetime.fromisoformat(processed_at) - datetime.fromisoformat(created_at)
    return round(elapsed.total_seconds() * 1000, 1)


class ConsoleSnapshot(DependencyProvider):
    """Injects `read(generator, processor, queue_figures) -> snapshot`, with
    the chart window this gateway keeps between reads."""

    def setup(self):
        self.window = ChartWindow()
        self.instance_rules = instance_rules(self.container.config)

    def get_dependency(self, worker_ctx):
        return lambda generator, processor, queue_figures: read_snapshot(
            generator, processor, queue_figures, self.window, self.instance_rules
        )

"""Scenario: creates, the confirmation RPC and `GET /orders/<id>` with many
rows in `orders` and `order_process`, against an empty database, in one
run; then what retention costs while it deletes those rows.

Each side is a fresh sandbox. The full one is filled with bulk SQL
(bench.metrics_endpoint: INSERT ... SELECT from MariaDB's SEQUENCE engine,
in chunks), as orders created and processed 10 days ago. On each side, with
the three services running:

- creates: `create_order` with 200 calls in flight (bench.rpc_load), and
  the orders processed per second over the same window (the running
  totals, which retention leaves alone);
- confirmation: `get_orders` of 100 ids spread over the table, 200 in
  flight: the processor's confirmation of a batch;
- reads: `GET /orders/<id>` from 16 clients (one id, in the middle of the
  table; so the rows are in the buffer pool and this measures the path
  and the indexes' depth, not reads from disk).

The empty side runs before the full one and again after it, and its
figures are the mean of the two. Then, on the full side only, the
generator and processor are restarted with ORDER_RETENTION_DAYS and RESULT_RETENTION_DAYS at 1 (and a pass every
second, each up to 10 s of batches), and the creates are measured again
while the passes delete the filled rows: the retention cost is that rate
against the full side's without retention, and the rows deleted per second.
"""

import json
import os
import subprocess
import sys
import threading
import time

from sqlalchemy import text

from bench.metrics_endpoint import fill_processed_orders
from bench.rpc_clients import START_DELAY_SECONDS, WARMUP_SECONDS, rpc_load
from harness.processes import ROOT
from harness.sandbox import rpc_proxy, sandbox, wait_for_rpc

FILLED_AGE_DAYS = 10
CONFIRMED_PER_CALL = 100
READ_CLIENTS = 16
RETENTION = {
    "ORDER_RETENTION_DAYS": "1",
    "RESULT_RETENTION_DAYS": "1",
    "RETENTION_INTERVAL_SECONDS": "1",
}


def processed_total(engine):
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT COALESCE(SUM(orders_processed), 0) FROM processing_totals")
            ).scalar_one()
        )


def deleted_so_far(engine):
    """(orders deleted, results deleted) by retention: the filled orders go
    oldest first, which is lowest id first; the results are counted."""
    with engine.connect() as connection:
        lowest = connection.execute(text("SELECT MIN(id) FROM orders")).scalar_one() or 1
        results = connection.execute(
            text("SELECT COALESCE(SUM(orders), 0) FROM pruned_results")
        ).scalar_one()
    return lowest - 1, int(results)


def table_megabytes(engine):
    """{table: data and indexes in MiB} of the two large tables, as InnoDB
    estimates them."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, (data_length + index_length) / 1048576 "
                "FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name IN ('orders', 'order_process')"
            )
        )
        return {name: float(size) for name, size in rows}


def creates(pipeline, engine, seconds):
    """create_order at 200 in flight, and the orders processed per second
    in the same window (sampled by the clock, as bench.rpc_clients sets it)."""
    window_from = time.time() + START_DELAY_SECONDS + WARMUP_SECONDS
    samples = {}

    def sample():
        for key, moment in (("first", window_from), ("last", window_from + seconds)):
            time.sleep(max(0.0, moment - time.time()))
            samples[key] = (processed_total(engine), deleted_so_far(engine))

    sampler = threading.Thread(target=sample)
    sampler.start()
    load = rpc_load(pipeline.amqp_uri, "order_generator", "create_order", [3], seconds=seconds)
    sampler.join()
    (processed_0, deleted_0), (processed_1, deleted_1) = samples["first"], samples["last"]
    return {
        "creates_per_second": load["calls_per_second"],
        "processed_per_second": (processed_1 - processed_0) / seconds,
        "orders_deleted_per_second": (deleted_1[0] - deleted_0[0]) / seconds,
        "results_deleted_per_second": (deleted_1[1] - deleted_0[1]) / seconds,
    }


def reads(pipeline, order_id, seconds):
    load = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.http_load",
            pipeline.url(f"/orders/{order_id}"),
            "--concurrency",
            str(READ_CLIENTS),
            "--seconds",
            str(seconds),
            "--warmup",
            str(WARMUP_SECONDS),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(load.stdout)
    if figures["errors"]:
        raise RuntimeError(f"GET /orders/{order_id} failed: {figures['first_errors']}")
    return {"requests_per_second": figures["requests_per_second"], **figures["latency"]}


# After the fill, InnoDB goes on working in the background (purging undo
# history, flushing the dirty pages of gigabytes of inserts); measured then,
# the full side's figures were the fill's, not the tables'. The full side
# waits until that has settled: for at most a second per 100,000 rows filled
# (so not at all, in effect, in the smoke), and SETTLE_LIMIT_SECONDS.
SETTLE_LIMIT_SECONDS = 600
SETTLE_ROWS_PER_SECOND = 100_000
SETTLED_HISTORY = 1000  # undo log entries not yet purged
# Of the buffer pool's pages; a busy server here keeps 10-20 % dirty.
SETTLED_DIRTY_SHARE = 0.25


def innodb_backlog(engine):
    with engine.connect() as connection:
        status = dict(
            connection.execute(
                text(
                    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_history_list_length', "
                    "'Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total')"
                )
            ).all()
        )
    return (
        int(status["Innodb_history_list_length"]),
        int(status["Innodb_buffer_pool_pages_dirty"])
        / int(status["Innodb_buffer_pool_pages_total"]),
    )


def wait_settled(engine, rows):
    """Seconds waited until InnoDB's purge and flushing caught up (or the limit)."""
    started = time.monotonic()
    limit = min(SETTLE_LIMIT_SECONDS, rows / SETTLE_ROWS_PER_SECOND)
    while time.monotonic() - started < limit:
        history, dirty = innodb_backlog(engine)
        if history <= SETTLED_HISTORY and dirty <= SETTLED_DIRTY_SHARE:
            break
        time.sleep(2)
    return time.monotonic() - started


def start(pipeline, **settings):
    generator = pipeline.start_service("generator_service", **settings)
    processor = pipeline.start_service("processor_service", **settings)
    wait_for_rpc(pipeline.broker, "order_generator", "status", [generator])
    wait_for_rpc(pipeline.broker, "order_processor", "metrics", [processor])
    return generator, processor


def one_side(log_dir, rows, seconds):
    with sandbox(log_dir, GENERATE_ON_FIRST_START="false") as pipeline:
        started = time.monotonic()
        if rows:
            fill_processed_orders(pipeline.db_uri, rows, age_days=FILLED_AGE_DAYS)
        fill_seconds = time.monotonic() - started
        settle_seconds = 0.0
        if rows:
            engine = pipeline.engine()
            try:
                settle_seconds = wait_settled(engine, rows)
            finally:
                engine.dispose()
        generator, processor = start(pipeline)
        pipeline.start_service("gateway")
        pipeline.wait_healthy()
        with rpc_proxy(pipeline.broker) as proxy:
            made = [order["id"] for order in proxy.order_generator.create_orders([1] * 100)]
        # Ids spread over the table (the filled rows), or the orders just made.
        step = max(1, rows // CONFIRMED_PER_CALL)
        ids = list(range(1, rows + 1, step))[:CONFIRMED_PER_CALL] if rows else made
        engine = pipeline.engine()
        try:
            side = {
                "rows": rows,
                "fill_seconds": fill_seconds,
                "settle_seconds": settle_seconds,
                "mib": table_megabytes(engine),
            }
            side["creates"] = creates(pipeline, engine, seconds)
            confirm = rpc_load(
                pipeline.amqp_uri, "order_generator", "get_orders", [ids], seconds=seconds
            )
            side["confirm_calls_per_second"] = confirm["calls_per_second"]
            side["reads"] = reads(pipeline, ids[len(ids) // 2], seconds)
            if rows:
                generator.stop()
                processor.stop()
                start(pipeline, **RETENTION)
                side["creates_while_pruning"] = creates(pipeline, engine, seconds)
        finally:
            engine.dispose()
    return side


def run_table_size(log_dir, rows, seconds):
    """The empty side before and after the full one, in one run: the
    empty figures are the mean of the two, so that a machine whose load
    changes over the run (the fill takes minutes) weighs on both sides."""
    before = one_side(os.path.join(log_dir, "empty-before"), 0, seconds)
    full = one_side(os.path.join(log_dir, "full"), rows, seconds)
    after = one_side(os.path.join(log_dir, "empty-after"), 0, seconds)
    return {
        "rows": rows,
        "seconds": seconds,
        "empty": mean_of(before, after),
        "empty_runs": [before, after],
        "full": full,
    }


def mean_of(first, second):
    """The mean of two runs' figures, key by key (nested dicts too)."""
    if isinstance(first, dict):
        return {key: mean_of(first[key], second[key]) for key in first if key in second}
    if isinstance(first, int | float) and isinstance(second, int | float):
        return (first + second) / 2
    return first


def ratio(part, whole):
    """part / whole, or None when the whole is under one a second (a window
    too short to say)."""
    return part / whole if whole >= 1 else None


def ratios(run):
    """Each figure full / empty (>= 1 is as fast or faster), and the
    creates while pruning / without."""
    empty, full = run["empty"], run["full"]
    pruning = full["creates_while_pruning"]
    return {
        "creates": ratio(
            full["creates"]["creates_per_second"], empty["creates"]["creates_per_second"]
        ),
        "confirm": ratio(full["confirm_calls_per_second"], empty["confirm_calls_per_second"]),
        "reads": ratio(full["reads"]["requests_per_second"], empty["reads"]["requests_per_second"]),
        "creates_while_pruning": ratio(
            pruning["creates_per_second"], full["creates"]["creates_per_second"]
        ),
        "processed_while_pruning": ratio(
            pruning["processed_per_second"], full["creates"]["processed_per_second"]
        ),
    }


def shown(value):
    return "-" if value is None else f"{value:.2f}x"


def table(runs):
    """The printed lines for the runs of this scenario."""
    lines = ["", "tables: empty vs full (each run; ratio = full / empty)"]
    for run in runs:
        empty, full, ratios_of = run["empty"], run["full"], ratios(run)
        pruning = full["creates_while_pruning"]
        lines += [
            f"  {run['rows']:,} rows (filled in {full['fill_seconds']:.0f} s, InnoDB settled "
            f"{full.get('settle_seconds', 0):.0f} s later, "
            f"{sum(full.get('mib', {}).values()):,.0f} MiB), "
            f"{run['seconds']:g} s per load",
            "    create_order, 200 in flight   {:8.0f} /s  {:8.0f} /s  {}".format(
                empty["creates"]["creates_per_second"],
                full["creates"]["creates_per_second"],
                shown(ratios_of["creates"]),
            ),
            "    get_orders of 100 ids          {:8.0f} /s  {:8.0f} /s  {}".format(
                empty["confirm_calls_per_second"],
                full["confirm_calls_per_second"],
                shown(ratios_of["confirm"]),
            ),
            "    GET /orders/<id>, 16 clients   {:8.0f} /s  {:8.0f} /s  {}  "
            "(p99 {:.1f} / {:.1f} ms)".format(
                empty["reads"]["requests_per_second"],
                full["reads"]["requests_per_second"],
                shown(ratios_of["reads"]),
                empty["reads"]["p99_ms"],
                full["reads"]["p99_ms"],
            ),
            "    empty before / after the full side: create_order {:.0f} / {:.0f} /s, "
            "get_orders {:.0f} / {:.0f} /s, GET {:.0f} / {:.0f} /s".format(
                *(
                    side[a][b] if b else side[a]
                    for a, b in (
                        ("creates", "creates_per_second"),
                        ("confirm_calls_per_second", None),
                        ("reads", "requests_per_second"),
                    )
                    for side in run.get("empty_runs", [empty, empty])
                )
            ),
            "    retention: creates {:.0f} /s while pruning vs {:.0f} /s without ({}); "
            "processed {:.0f} vs {:.0f} /s ({}); deleted {:.0f} orders/s, "
            "{:.0f} results/s".format(
                pruning["creates_per_second"],
                full["creates"]["creates_per_second"],
                shown(ratios_of["creates_while_pruning"]),
                pruning["processed_per_second"],
                full["creates"]["processed_per_second"],
                shown(ratios_of["processed_while_pruning"]),
                pruning["orders_deleted_per_second"],
                pruning["results_deleted_per_second"],
            ),
        ]
    return "\n".join(lines)

"""Scenario 3: GET /metrics with many processed orders in the tables.

The tables are filled with bulk SQL (MariaDB's SEQUENCE engine), as if
`rows` orders had been processed: `orders`, one `order_process` row each at
quantity x unit price rounded half-up, and `processing_totals` holding the
sums per shard. Then a processor and the gateway start, /metrics is checked
against the tables, and a separate process loads it over HTTP.
"""

import json
import subprocess
import sys
import time
from decimal import ROUND_HALF_UP, Decimal

import requests
from sqlalchemy import create_engine, text

from bench.process_stats import peak_rss_by_service
from harness.processes import ROOT, wait_until
from harness.sandbox import check_running, sandbox
from processor_service.store import TOTALS_SHARDS

FILL_CHUNK = 200_000
# Quantity 1..100 and unit price 90.00..109.99, both varying with the id.
FILL_ORDERS = (
    "INSERT INTO orders (id, quantity, created_at) "
    "SELECT seq, 1 + seq % 100, {at} FROM seq_{first}_to_{last}"
)
FILL_ORDER_PROCESS = (
    "INSERT INTO order_process (order_id, unit_price, execution_price, processed_at) "
    "SELECT seq, 90 + (seq % 2000) / 100, "
    "ROUND((1 + seq % 100) * (90 + (seq % 2000) / 100), 2), {at} "
    "FROM seq_{first}_to_{last}"
)
FILL_TOTALS = (
    "INSERT INTO processing_totals (shard, orders_processed, execution_price_sum) "
    "SELECT order_id % {shards}, COUNT(*), SUM(execution_price) FROM order_process "
    "GROUP BY order_id % {shards}"
)


def fill_processed_orders(db_uri, rows, age_days=0):
    """Fill the tables with `rows` processed orders, created and processed
    `age_days` ago; returns what /metrics must then answer, computed from
    order_process."""
    at = f"UTC_TIMESTAMP(6) - INTERVAL {int(age_days)} DAY"
    engine = create_engine(db_uri)
    try:
        for first in range(1, rows + 1, FILL_CHUNK):
            last = min(first + FILL_CHUNK - 1, rows)
            with engine.begin() as connection:
                connection.execute(text(FILL_ORDERS.format(first=first, last=last, at=at)))
                connection.execute(text(FILL_ORDER_PROCESS.format(first=first, last=last, at=at)))
        with engine.begin() as connection:
            connection.execute(text(FILL_TOTALS.format(shards=TOTALS_SHARDS)))
            count, total = connection.execute(
                text("SELECT COUNT(*), SUM(execution_price) FROM order_process")
            ).one()
    finally:
        engine.dispose()
    average = (Decimal(total) / count).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return {"total_orders_processed": count, "average_execution_price": str(average)}


def run_metrics_load(log_dir, rows, concurrency, seconds, warmup=1):
    with sandbox(log_dir) as pipeline:
        started = time.monotonic()
        expected = fill_processed_orders(pipeline.db_uri, rows)
        fill_seconds = time.monotonic() - started
        processor = pipeline.start_service("processor_service")
        gateway = pipeline.start_service("gateway")
        answer = wait_until(
            lambda: _metrics(pipeline, [processor, gateway]),
            60,
            interval=0.2,
            message="GET /metrics",
        )
        if answer != expected:
            raise RuntimeError(f"/metrics says {answer}, the tables say {expected}")
        load = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.http_load",
                pipeline.url("/metrics"),
                "--concurrency",
                str(concurrency),
                "--seconds",
                str(seconds),
                "--warmup",
                str(warmup),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        memory = peak_rss_by_service([("order_processor", processor), ("gateway", gateway)])
    return {
        "rows": rows,
        "fill_seconds": fill_seconds,
        "metrics": answer,
        **json.loads(load.stdout),
        "peak_rss_mb": memory,
    }


def _metrics(pipeline, processes):
    check_running(processes)
    try:
        response = pipeline.get("/metrics", timeout=5)
    except requests.RequestException:
        return None
    return response.json() if response.status_code == 200 else None

"""POST /orders with many concurrent HTTP clients against one gateway and
one generator, beside the ceiling measured in the same run: a do-nothing
`@http` route (bench.noop_http_service) loaded by the same client with the
same request.

The load comes from `bench.http_load` in a process of its own (32 threads,
keep-alive connections, requests back to back). The CPU each process spends
per order created, including the machine's RabbitMQ and MariaDB, is read
from /proc over the POST /orders load.
"""

import json
import subprocess
import sys
from functools import partial

import requests

from bench.process_stats import cpu_seconds, peak_rss_by_service, server_pids
from gateway.settings import gateway_max_workers
from harness.processes import CONFIG, ROOT, TEST_TOKEN, free_port, wait_until
from harness.sandbox import check_running, sandbox, wait_for_rpc
from harness.tables import order_count
from order_pipeline.config import load_config

CLIENTS = 32
ORDER_BODY = '{"quantity": 3}'
# A second gateway on the same generator, with the services' pool size
# instead of its own: each POST /orders holds a worker while it waits for
# its shared call, so GATEWAY_MAX_WORKERS (less the two kept for cheap
# routes) bounds how many requests one create_orders call can take.
NARROW_GATEWAY_WORKERS = 10


def http_load(url, clients, seconds, warmup):
    """One closed-loop POST load with an order's body and the bearer token;
    bench.http_load's JSON answer."""
    load = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.http_load",
            url,
            "--method",
            "POST",
            "--body",
            ORDER_BODY,
            "--header",
            f"Authorization: Bearer {TEST_TOKEN}",
            "--concurrency",
            str(clients),
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
    return json.loads(load.stdout)


def answers_post(url, processes):
    check_running(processes)
    try:
        response = requests.post(
            url,
            data=ORDER_BODY,
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
            timeout=5,
        )
    except requests.RequestException:
        return False
    return response.status_code == 201


def run_http_orders(log_dir, seconds, clients=CLIENTS, warmup=1):
    with sandbox(log_dir, GENERATE_ON_FIRST_START="false") as pipeline:
        generator = pipeline.start_service("generator_service")
        gateway = pipeline.start_service("gateway")
        narrow_address = f"127.0.0.1:{free_port()}"
        narrow_gateway = pipeline.start_service(
            "gateway",
            WEB_SERVER_ADDRESS=narrow_address,
            GATEWAY_MAX_WORKERS=str(NARROW_GATEWAY_WORKERS),
        )
        narrow_url = f"http://{narrow_address}/orders"
        noop_address = f"127.0.0.1:{free_port()}"
        # The do-nothing route gets as many workers as the gateway.
        noop = pipeline.start_service(
            "bench.noop_http_service",
            WEB_SERVER_ADDRESS=noop_address,
            MAX_WORKERS=str(gateway_max_workers(load_config(CONFIG))),
        )
        wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])
        noop_url = f"http://{noop_address}/orders"
        for url, processes in (
            (noop_url, [noop]),
            (pipeline.url("/orders"), [generator, gateway]),
            (narrow_url, [generator, narrow_gateway]),
        ):
            wait_until(partial(answers_post, url, processes), 60, message=f"POST {url}")

        noop_load = http_load(noop_url, clients, seconds, warmup)
        measured = [("order_generator", generator.process.pid), ("gateway", gateway.process.pid)]
        measured += sorted(server_pids().items())
        before = {label: cpu_seconds(pid) for label, pid in measured}
        created_before = order_count(pipeline.db_uri)
        orders_load = http_load(pipeline.url("/orders"), clients, seconds, warmup)
        created = order_count(pipeline.db_uri) - created_before
        after = {label: cpu_seconds(pid) for label, pid in measured}
        narrow_before = order_count(pipeline.db_uri)
        narrow_load = http_load(narrow_url, clients, seconds, warmup)
        narrow_created = order_count(pipeline.db_uri) - narrow_before
        memory = peak_rss_by_service([("order_generator", generator), ("gateway", gateway)])
    for load, made in ((orders_load, created), (narrow_load, narrow_created)):
        if made < load["requests"]:
            raise RuntimeError(f"{load['requests']} orders answered 201, {made} created")
    figures = summarise(noop_load, orders_load, created, before, after, memory)
    noop_rate = noop_load["requests_per_second"]
    figures.update(
        {
            "narrow_gateway_workers": NARROW_GATEWAY_WORKERS,
            "narrow_orders_per_second": narrow_load["requests_per_second"],
            "narrow_ratio": narrow_load["requests_per_second"] / noop_rate if noop_rate else None,
            "narrow_p50_ms": narrow_load.get("latency", {}).get("p50_ms"),
            "narrow_p99_ms": narrow_load.get("latency", {}).get("p99_ms"),
            "errors": figures["errors"] + narrow_load["errors"],
            "first_errors": figures["first_errors"] + narrow_load["first_errors"],
        }
    )
    return figures


def summarise(noop_load, orders_load, created, before, after, memory):
    noop_rate = noop_load["requests_per_second"]
    orders_rate = orders_load["requests_per_second"]
    return {
        "clients": orders_load["concurrency"],
        "seconds": orders_load["seconds"],
        "noop_requests_per_second": noop_rate,
        "noop_p99_ms": noop_load.get("latency", {}).get("p99_ms"),
        "orders_per_second": orders_rate,
        "ratio": orders_rate / noop_rate if noop_rate else None,
        "p50_ms": orders_load.get("latency", {}).get("p50_ms"),
        "p99_ms": orders_load.get("latency", {}).get("p99_ms"),
        "errors": orders_load["errors"] + noop_load["errors"],
        "first_errors": orders_load["first_errors"] + noop_load["first_errors"],
        "client_cpu_seconds": orders_load["client_cpu_seconds"],
        "orders_created": created,
        "cpu_ms_per_order": {
            label: (after[label] - before[label]) / created * 1000
            for label in before
            if created and before[label] is not None and after[label] is not None
        },
        "peak_rss_mb": memory,
    }

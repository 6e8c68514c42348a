"""A small closed-loop HTTP load generator, run as its own process:

    python -m bench.http_load http://127.0.0.1:PORT/metrics \
        --concurrency 16 --seconds 10 --warmup 1
    python -m bench.http_load http://127.0.0.1:PORT/orders --method POST \
        --body '{"quantity": 3}' --header "Authorization: Bearer TOKEN"

Each of `concurrency` threads keeps one keep-alive connection and sends
requests (GET unless told) back to back; any 2xx answer counts as a success. Requests started during the warm-up are not
counted. Prints one JSON object: requests/s, latency percentiles, errors
and the CPU time this client used (to see whether it was the bottleneck).
"""

import argparse
import http.client
import json
import os
import threading
import time
from urllib.parse import urlsplit

from bench.stats import latency_summary

TIMEOUT_SECONDS = 10


def hammer(url, measure_from, stop_at, latencies, errors, request=("GET", None, {})):
    method, body, headers = request
    parts = urlsplit(url)
    connection = None
    while True:
        started = time.perf_counter()
        if started >= stop_at:
            break
        try:
            if connection is None:
                connection = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=TIMEOUT_SECONDS
                )
            connection.request(method, parts.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            failure = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            failure = type(exc).__name__
            connection.close()
            connection = None
        if started >= measure_from:
            if failure is None:
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(failure)
    if connection is not None:
        connection.close()


def run_load(url, concurrency, seconds, warmup, request=("GET", None, {})):
    latencies, errors = [], []
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds
    cpu_before = os.times()
    threads = [
        threading.Thread(
            target=hammer, args=(url, measure_from, stop_at, latencies, errors, request)
        )
        for _ in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_after = os.times()
    result = {
        "concurrency": concurrency,
        "seconds": seconds,
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "requests_per_second": len(latencies) / seconds,
        "client_cpu_seconds": (cpu_after.user - cpu_before.user)
        + (cpu_after.system - cpu_before.system),
    }
    if latencies:
        result["latency"] = latency_summary(latencies)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", help="the request body (sent as JSON)")
    parser.add_argument("--header", action="append", default=[], help='"Name: value", repeatable')
    args = parser.parse_args(argv)
    headers = dict(header.split(": ", 1) for header in args.header)
    body = None
    if args.body is not None:
        body = args.body.encode()
        headers.setdefault("Content-Type", "application/json")
    request = (args.method, body, headers)
    print(json.dumps(run_load(args.url, args.concurrency, args.seconds, args.warmup, request)))


if __name__ == "__main__":
    main()

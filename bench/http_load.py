"""A small closed-loop HTTP load generator, run as its own process:

    python -m bench.http_load http://127.0.0.1:PORT/metrics \
        --concurrency 16 --seconds 10 --warmup 1

Each of `concurrency` threads keeps one keep-alive connection and sends
GET requests back to back. Requests started during the warm-up are not
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


def hammer(url, measure_from, stop_at, latencies, errors):
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
            connection.request("GET", parts.path)
            response = connection.getresponse()
            response.read()
            failure = None if response.status == 200 else f"HTTP {response.status}"
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


def run_load(url, concurrency, seconds, warmup):
    latencies, errors = [], []
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds
    cpu_before = os.times()
    threads = [
        threading.Thread(target=hammer, args=(url, measure_from, stop_at, latencies, errors))
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
    args = parser.parse_args(argv)
    print(json.dumps(run_load(args.url, args.concurrency, args.seconds, args.warmup)))


if __name__ == "__main__":
    main()

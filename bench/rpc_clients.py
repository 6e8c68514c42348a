"""bench.rpc_load client processes, started together and measuring the
same window, their figures added up: one load of one RPC method.

    rpc_load(amqp_uri, "order_generator", "create_order", [3], processes=2)
"""

import json
import subprocess
import sys
import time

from harness.processes import ROOT

IN_FLIGHT = 200
# Time for the client processes to start and connect before they all start
# sending at once.
START_DELAY_SECONDS = 2
WARMUP_SECONDS = 1


def in_flight_shares(in_flight, processes):
    """`in_flight` calls split as evenly as can be over `processes`."""
    if processes < 1 or in_flight < processes:
        raise ValueError(f"{in_flight} calls in flight cannot be shared by {processes} processes")
    base, extra = divmod(in_flight, processes)
    return [base + (1 if n < extra else 0) for n in range(processes)]


def combine(runs):
    """One figure for client processes that measured the same window: their
    answers per second added up, the CPU of the busiest one."""
    cpu = [run["client_cpu_cores"] for run in runs if run["client_cpu_cores"] is not None]
    return {
        "processes": len(runs),
        "in_flight": sum(run["in_flight"] for run in runs),
        "calls_per_second": sum(run["calls_per_second"] for run in runs),
        "answered": sum(run["answered"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "first_errors": sorted({e for run in runs for e in run["first_errors"]})[:3],
        "client_cpu_cores": max(cpu) if cpu else None,
    }


def rpc_load(amqp_uri, service, method, args=(), processes=1, in_flight=IN_FLIGHT, seconds=10):
    """Load `service.method(*args)` from `processes` bench.rpc_load
    processes sharing `in_flight` calls, all measuring the same window;
    their combined figures. Fails if a call failed or a process could not
    start in time to measure the whole window."""
    start_at = time.time() + START_DELAY_SECONDS
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.rpc_load",
                amqp_uri,
                service,
                method,
                "--args",
                json.dumps(list(args)),
                "--in-flight",
                str(share),
                "--seconds",
                str(seconds),
                "--warmup",
                str(WARMUP_SECONDS),
                "--start-at",
                repr(start_at),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in in_flight_shares(in_flight, processes)
    ]
    runs = []
    for client in clients:
        out, err = client.communicate()
        if client.returncode != 0:
            raise RuntimeError(f"bench.rpc_load {service}.{method} failed: {err.strip()[-3000:]}")
        runs.append(json.loads(out))
    late = max(run["late_seconds"] for run in runs)
    if late > WARMUP_SECONDS:
        raise RuntimeError(f"a client process started {late:.1f} s late and missed the window")
    combined = combine(runs)
    if combined["errors"]:
        raise RuntimeError(
            f"{combined['errors']} {service}.{method} calls failed: {combined['first_errors']}"
        )
    return combined

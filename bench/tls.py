"""`python -m bench --tls`: what TLS on every hop costs, measured.

The backlog drain (1 processor) and the created-to-processed latency run
in one invocation on two sets of private servers started for the run
(harness.private_servers), the same but for TLS: a RabbitMQ node and a
MariaDB server in clear, and a RabbitMQ node with TLS only (the services
log in with a client certificate, EXTERNAL) and a MariaDB that requires TLS
(the services' user a client certificate). The two alternate, so that a
change in the machine's load hits both. Each connection's TLS handshake
happens once, at connect; what TLS costs at run time is encrypting and
decrypting every message and row. The table puts the two side by side with
their ratio.
"""

import datetime
import os
import shutil
import tempfile
import traceback
from contextlib import contextmanager

from bench.cluster import FIGURES, figures
from bench.drain import run_drain
from bench.latency import run_latency
from harness.private_servers import PrivateServers

PLACES = ("plain", "tls")
LABELS = {"plain": "in clear", "tls": "TLS on every hop"}


def say(text):
    print(text, flush=True)


@contextmanager
def running_servers():
    """{"plain": servers, "tls": servers}, started together, stopped and
    removed afterwards."""
    base_dir = tempfile.mkdtemp(prefix="bench_tls_")
    places = {
        place: PrivateServers(os.path.join(base_dir, place), tls=place == "tls") for place in PLACES
    }
    try:
        for servers in places.values():
            servers.launch()
        for servers in places.values():
            servers.wait_started()
        yield places
    finally:
        for servers in places.values():
            servers.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


def runs(args, logs, places):
    """(place, scenario, outcome or exception) for every run."""
    for n in range(1, args.repeat + 1):
        for place in PLACES:
            say(f"... [{place}] drain with 1 processor, {args.orders} orders")
            yield (
                place,
                "drain",
                _attempt(
                    run_drain,
                    os.path.join(logs, f"{place}-drain-{n}"),
                    args.orders,
                    1,
                    servers=places[place],
                ),
            )
            say(
                f"... [{place}] latency at {args.latency_rate:g} orders/s "
                f"for {args.latency_seconds:g} s"
            )
            yield (
                place,
                "latency",
                _attempt(
                    run_latency,
                    os.path.join(logs, f"{place}-latency-{n}"),
                    args.latency_rate,
                    args.latency_seconds,
                    args.latency_source,
                    servers=places[place],
                ),
            )


def _attempt(run, *args, **kwargs):
    try:
        return run(*args, **kwargs)
    except Exception as exc:  # reported in the results, the rest goes on
        traceback.print_exc()
        return exc


def run_tls_profile(args, logs):
    results = {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "profile": "tls",
        "machine": {"cpus": os.cpu_count(), "load_before": list(os.getloadavg())},
        "sizes": {
            "orders": args.orders,
            "latency_rate": args.latency_rate,
            "latency_seconds": args.latency_seconds,
            "latency_source": args.latency_source,
            "repeat": args.repeat,
        },
        "errors": {},
        "runs": {place: {"drain": [], "latency": []} for place in PLACES},
    }
    say("... starting a RabbitMQ node and a MariaDB server in clear, and the same with TLS only")
    with running_servers() as places:
        for place, scenario, outcome in runs(args, logs, places):
            if isinstance(outcome, Exception):
                results["errors"][f"{place} {scenario}"] = f"{type(outcome).__name__}: {outcome}"
            else:
                results["runs"][place][scenario].append(outcome)
    results["machine"]["load_after"] = list(os.getloadavg())
    results["figures"] = {place: figures(results["runs"][place]) for place in PLACES}
    return results


def table(results):
    plain, tls = results["figures"]["plain"], results["figures"]["tls"]
    rows = []
    for key, label, unit, fmt, _higher_is_better in FIGURES:
        a, b = plain.get(key), tls.get(key)
        rows.append(
            (
                label,
                "-" if a is None else f"{fmt.format(a)} {unit}",
                "-" if b is None else f"{fmt.format(b)} {unit}",
                f"{b / a:.2f} x" if a and b is not None else "-",
            )
        )
    header = ("figure", LABELS["plain"], LABELS["tls"], "TLS / clear")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    sizes, machine = results["sizes"], results["machine"]
    lines = [
        "TLS profile: drain of {orders} orders (1 processor), latency {latency_seconds:g} s "
        "at {latency_rate:g}/s ({latency_source}); {repeat} run(s) each, medians shown".format(
            **sizes
        ),
        "machine: {} CPUs, load average before {}, after {}".format(
            machine["cpus"],
            " ".join(f"{x:.2f}" for x in machine["load_before"]),
            " ".join(f"{x:.2f}" for x in machine["load_after"]),
        ),
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    for what, error in results["errors"].items():
        lines.append(f"FAILED {what}: {error}")
    return "\n".join(lines)

"""`python -m bench --cluster`: the cost of replication, measured.

The backlog drain (1 processor) and the created-to-processed latency run
twice in one invocation, alternately: on the machine's RabbitMQ and MariaDB
(classic queues), and on a 3-node RabbitMQ cluster with quorum queues and a
3-node Galera cluster behind HAProxy (harness.clusters, started for the run
and removed after it). The table puts the two side by side with their
ratio."""

import datetime
import os
import traceback

from bench.drain import run_drain
from bench.latency import run_latency
from bench.stats import median_of
from harness.clusters import ClusterServers, running_clusters
from harness.sandbox import LocalServers

PLACES = ("single", "cluster")
# (figure key, label, unit, format, better when higher)
FIGURES = (
    ("drain_orders_per_second", "drain, 1 processor", "orders/s", "{:.0f}", True),
    ("latency_p50_ms", "latency p50", "ms", "{:.1f}", False),
    ("latency_p95_ms", "latency p95", "ms", "{:.1f}", False),
    ("latency_p99_ms", "latency p99", "ms", "{:.1f}", False),
    ("latency_rate", "latency rate achieved", "orders/s", "{:.0f}", True),
)


def say(text):
    print(text, flush=True)


def runs(args, logs, servers_of):
    """(place, scenario, outcome or exception) for every run, the two
    places alternating so that a change in the machine's load hits both."""
    for n in range(1, args.repeat + 1):
        for place in PLACES:
            servers = servers_of[place]
            say(f"... [{place}] drain with 1 processor, {args.orders} orders")
            yield (
                place,
                "drain",
                _attempt(
                    run_drain,
                    os.path.join(logs, f"{place}-drain-{n}"),
                    args.orders,
                    1,
                    servers=servers,
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
                    servers=servers,
                ),
            )


def _attempt(run, *args, **kwargs):
    try:
        return run(*args, **kwargs)
    except Exception as exc:  # reported in the results, the rest goes on
        traceback.print_exc()
        return exc


def run_cluster_profile(args, logs):
    results = {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "profile": "cluster",
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
    say("... starting a 3-node RabbitMQ cluster and a 3-node Galera cluster")
    with running_clusters() as clusters:
        servers_of = {"single": LocalServers, "cluster": ClusterServers(clusters)}
        for place, scenario, outcome in runs(args, logs, servers_of):
            if isinstance(outcome, Exception):
                results["errors"][f"{place} {scenario}"] = f"{type(outcome).__name__}: {outcome}"
            else:
                results["runs"][place][scenario].append(outcome)
    results["machine"]["load_after"] = list(os.getloadavg())
    results["figures"] = {place: figures(results["runs"][place]) for place in PLACES}
    return results


def figures(place_runs):
    latency = [
        dict(run["latency"], rate=run["created_orders_per_second"]) for run in place_runs["latency"]
    ]
    return {
        "drain_orders_per_second": median_of(place_runs["drain"], "orders_per_second"),
        "latency_p50_ms": median_of(latency, "p50_ms"),
        "latency_p95_ms": median_of(latency, "p95_ms"),
        "latency_p99_ms": median_of(latency, "p99_ms"),
        "latency_rate": median_of(latency, "rate"),
    }


def table(results):
    single, cluster = results["figures"]["single"], results["figures"]["cluster"]
    rows = []
    for key, label, unit, fmt, _higher_is_better in FIGURES:
        a, b = single.get(key), cluster.get(key)
        ratio = f"{b / a:.2f} x" if a and b is not None else "-"
        rows.append(
            (
                label,
                "-" if a is None else f"{fmt.format(a)} {unit}",
                "-" if b is None else f"{fmt.format(b)} {unit}",
                ratio,
            )
        )
    header = ("figure", "single node", "3+3 cluster, quorum", "cluster / single")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    sizes, machine = results["sizes"], results["machine"]
    lines = [
        "Cluster profile: drain of {orders} orders (1 processor), latency {latency_seconds:g} s "
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
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    for what, error in results["errors"].items():
        lines.append(f"FAILED {what}: {error}")
    return "\n".join(lines)

"""`python -m bench`: run the scenarios, print the table, write the JSON."""

import argparse
import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import traceback
from functools import partial

from bench.cluster import run_cluster_profile
from bench.cluster import table as cluster_table
from bench.drain import run_drain
from bench.http_orders import run_http_orders
from bench.ingest import run_ingest
from bench.latency import SOURCES, run_latency
from bench.metrics_endpoint import run_metrics_load
from bench.naive import run_naive_comparison
from bench.outbox_publish import run_outbox_publish
from bench.profile import profile_create_order, profile_drain, profile_sustained
from bench.report import figures, table, target_checks
from bench.sustained import run_sustained
from bench.table_size import run_table_size
from bench.table_size import table as table_size_table
from bench.tls import run_tls_profile
from bench.tls import table as tls_table
from bench.tracing_cost import MODES, run_tracing_drain, run_tracing_latency
from bench.tracing_report import tracing_figures, tracing_table
from harness.processes import ROOT

RESULTS_DIR = os.path.join(ROOT, "bench-results")
SCENARIOS = (
    "drain",
    "naive",
    "latency",
    "metrics",
    "ingest",
    "outbox",
    "http_orders",
    "sustained",
    "sustained_peak",
    "steady_latency",
    "tracing",
    "tables",
)
# Each size: its value at full size, in the smoke (used by CI to keep the
# script working), and what it sets. Each is an option (`orders` is
# --orders) of the type of its full-size value.
SIZES = {
    "orders": (20_000, 300, "backlog size for the drain"),
    "naive_orders": (
        10_000,
        200,
        "backlog size for the naive nameko pipeline and the processor drained beside it",
    ),
    "latency_seconds": (30.0, 3.0, "measured seconds at the steady rate"),
    "latency_rate": (100.0, 100.0, "orders per second"),
    "metrics_rows": (1_000_000, 5_000, "processed orders in the tables for /metrics"),
    "load_seconds": (10.0, 2.0, "seconds of /metrics load"),
    "concurrency": (16, 4, "concurrent /metrics clients"),
    "ingest_seconds": (
        10.0,
        1.0,
        "measured seconds of each ingest RPC load (do-nothing with 1 and 2 client processes, "
        "create_order, create_orders)",
    ),
    "timer_seconds": (10.0, 1.0, "seconds of the timer at a 1 ms interval"),
    "tracing_orders": (10_000, 300, "backlog size for each tracing-cost drain"),
    # The smoke skips the tracing latency runs (0): each is a fresh sandbox.
    "tracing_latency_seconds": (
        10.0,
        0.0,
        "measured seconds of each tracing-cost latency run, 0 skips them",
    ),
    "tracing_repeat": (3, 1, "runs of each tracing mode, taking turns, in one invocation"),
    "outbox_orders": (20_000, 500, "outbox rows published in batches"),
    "outbox_single_orders": (500, 50, "outbox rows published one at a time"),
    "http_seconds": (10.0, 2.0, "seconds of each POST /orders and do-nothing load"),
    "sustained_seconds": (60.0, 3.0, "seconds of orders offered end to end"),
    "sustained_rate": (1500.0, 200.0, "orders/s offered through create_orders"),
    "peak_seconds": (60.0, 3.0, "seconds of the sustained run at the peak rate"),
    "peak_rate": (3000.0, 400.0, "orders/s offered in that run"),
    "steady_latency_seconds": (30.0, 3.0, "seconds of the created -> processed latency run"),
    "steady_latency_rate": (500.0, 100.0, "orders/s offered for that latency"),
    "table_rows": (
        50_000_000,
        20_000,
        "rows in orders and order_process for the empty-vs-full tables run",
    ),
    "table_seconds": (10.0, 1.0, "seconds of each load in the tables run"),
}


def _shown(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


PROFILED_SERVICES = ("processor", "generator", "sustained")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark the order pipeline."
    )
    for key, (full, _smoke, what) in SIZES.items():
        parser.add_argument(
            "--" + key.replace("_", "-"), type=type(full), help=f"{what} ({_shown(full)})"
        )
    parser.add_argument(
        "--latency-source",
        choices=SOURCES,
        default="inprocess",
        help="who creates the orders for the latency run",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of " + ",".join(SCENARIOS),
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes (a check that the bench works; figures mean little)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="processor",
        choices=PROFILED_SERVICES,
        help="instead: one drain with the processor under py-spy (processor), create_order "
        "with 200 in flight for --ingest-seconds with the generator under py-spy (generator), "
        "or the sustained run at --sustained-rate with every service under py-spy and every "
        "process's CPU per order (sustained)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="instead: drain and latency on the machine's servers and on a 3+3 cluster "
        "with quorum queues (started for the run), side by side",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="instead: drain and latency in clear and with TLS on every hop, side by side",
    )
    parser.add_argument("--output", help="results file (bench-results/latest.json)")
    args = parser.parse_args(argv)
    for key, (full, smoke, _what) in SIZES.items():
        if getattr(args, key) is None:
            setattr(args, key, smoke if args.smoke else full)
    if args.output is None:
        name = "cluster.json" if args.cluster else "tls.json" if args.tls else "latest.json"
        args.output = os.path.join(RESULTS_DIR, name)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error("unknown scenario(s): " + ", ".join(sorted(unknown)))
    return args


def say(text):
    print(text, flush=True)


def git_revision():
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+uncommitted changes" if dirty else "")


def plan(args, logs):
    """(scenario, title, run) for each run to do, in order."""
    for n in range(1, args.repeat + 1):
        if "drain" in args.scenarios:
            for processors in (1, 2):
                yield (
                    "drain",
                    f"drain with {processors} processor(s), {args.orders} orders",
                    partial(
                        run_drain,
                        os.path.join(logs, f"drain-{processors}p-{n}"),
                        args.orders,
                        processors,
                    ),
                )
        if "naive" in args.scenarios:
            turns = ("the naive nameko pipeline", "this project's processor")[:: 1 if n % 2 else -1]
            yield (
                "naive",
                f"drain through {turns[0]}, then {turns[1]}, 1 processor each, "
                f"{args.naive_orders} orders",
                partial(
                    run_naive_comparison,
                    os.path.join(logs, f"naive-{n}"),
                    args.naive_orders,
                    naive_first=n % 2 == 1,
                ),
            )
        if "latency" in args.scenarios:
            yield (
                "latency",
                f"latency at {args.latency_rate:g} orders/s for {args.latency_seconds:g} s",
                partial(
                    run_latency,
                    os.path.join(logs, f"latency-{n}"),
                    args.latency_rate,
                    args.latency_seconds,
                    args.latency_source,
                ),
            )
        if "metrics" in args.scenarios:
            yield (
                "metrics_endpoint",
                f"GET /metrics with {args.metrics_rows:,} rows",
                partial(
                    run_metrics_load,
                    os.path.join(logs, f"metrics-{n}"),
                    args.metrics_rows,
                    args.concurrency,
                    args.load_seconds,
                ),
            )
        yield from plan_ingest(args, logs, n)
        if "tables" in args.scenarios:
            yield (
                "tables",
                f"creates, get_orders and GET /orders/<id>: empty tables vs "
                f"{args.table_rows:,} rows, then while retention deletes them",
                partial(
                    run_table_size,
                    os.path.join(logs, f"tables-{n}"),
                    args.table_rows,
                    args.table_seconds,
                ),
            )
    yield from plan_tracing(args, logs)


def plan_ingest(args, logs, n):
    if "outbox" in args.scenarios:
        yield (
            "outbox",
            f"outbox: {args.outbox_orders} events in batches, {args.outbox_single_orders} one by one",
            partial(
                run_outbox_publish,
                os.path.join(logs, f"outbox-{n}"),
                args.outbox_orders,
                args.outbox_single_orders,
            ),
        )
    if "http_orders" in args.scenarios:
        yield (
            "http_orders",
            f"POST /orders and a do-nothing @http route, 32 clients, {args.http_seconds:g} s each",
            partial(run_http_orders, os.path.join(logs, f"http-orders-{n}"), args.http_seconds),
        )
    for scenario, rate, seconds in (
        ("sustained", args.sustained_rate, args.sustained_seconds),
        ("sustained_peak", args.peak_rate, args.peak_seconds),
        ("steady_latency", args.steady_latency_rate, args.steady_latency_seconds),
    ):
        if scenario in args.scenarios:
            yield (
                scenario,
                f"{scenario}: {rate:g} orders/s offered through create_orders for {seconds:g} s, "
                "1 generator, 2 processors",
                partial(run_sustained, os.path.join(logs, f"{scenario}-{n}"), rate, seconds),
            )
    if "ingest" in args.scenarios:
        yield (
            "ingest",
            f"ingest: do-nothing RPC (1 and 2 client processes), create_order and "
            f"create_orders for {args.ingest_seconds:g} s each, timer {args.timer_seconds:g} s",
            partial(
                run_ingest,
                os.path.join(logs, f"ingest-{n}"),
                args.ingest_seconds,
                args.timer_seconds,
                two_clients_first=n % 2 == 0,
            ),
        )


def plan_tracing(args, logs):
    """Each mode's drain then latency run, the modes taking turns, repeated
    (its own count, --tracing-repeat, so that there are medians to compare)."""
    if "tracing" not in args.scenarios:
        return
    for n in range(1, args.tracing_repeat + 1):
        for mode in MODES:
            yield (
                "tracing",
                f"tracing {mode}: drain with 1 processor, {args.tracing_orders} orders",
                partial(
                    run_tracing_drain,
                    os.path.join(logs, f"tracing-{mode}-drain-{n}"),
                    mode,
                    args.tracing_orders,
                ),
            )
            if not args.tracing_latency_seconds:
                continue
            yield (
                "tracing",
                f"tracing {mode}: latency, timer at {args.latency_rate:g}/s "
                f"for {args.tracing_latency_seconds:g} s",
                partial(
                    run_tracing_latency,
                    os.path.join(logs, f"tracing-{mode}-latency-{n}"),
                    mode,
                    args.latency_rate,
                    args.tracing_latency_seconds,
                ),
            )


def run_scenarios(args, logs):
    results = {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "git": git_revision(),
        "machine": {"cpus": os.cpu_count(), "load_before": list(os.getloadavg())},
        "sizes": {key: getattr(args, key) for key in SIZES}
        | {"repeat": args.repeat, "latency_source": args.latency_source, "smoke": args.smoke},
        "errors": {},
    }
    for scenario, title, run in plan(args, logs):
        say("... " + title)
        try:
            outcome = run()
        except Exception as exc:  # report it, run the rest, fail at the end
            traceback.print_exc()
            results["errors"][scenario] = f"{type(exc).__name__}: {exc}"
            continue
        results.setdefault(scenario, {"runs": []})["runs"].append(outcome)
    results["machine"]["load_after"] = list(os.getloadavg())
    figs = figures(results)
    results["figures"] = figs
    results["targets"] = target_checks(figs)
    results["tracing_figures"] = tracing_figures(results)
    return results, figs


def run_profile(args, logs):
    raw_path = os.path.join(RESULTS_DIR, f"{args.profile}-profile.raw.txt")
    if args.profile == "generator":
        say(
            f"... create_order with 200 in flight for {args.ingest_seconds:g} s, "
            "the generator under py-spy"
        )
        load, text = profile_create_order(logs, args.ingest_seconds, raw_path)
        summary = "\ncreate_order: {:.0f} calls/s, generator {:.2f} ms CPU per call".format(
            load["calls_per_second"], load["generator_cpu_ms_per_call"]
        )
    elif args.profile == "sustained":
        say(
            f"... {args.sustained_rate}/s offered for {args.sustained_seconds:g} s, "
            "every service under py-spy"
        )
        run, text = profile_sustained(
            logs, args.sustained_rate, args.sustained_seconds, RESULTS_DIR
        )
        summary = ""
    else:
        say(f"... drain with 1 processor under py-spy, {args.orders} orders")
        drain, text = profile_drain(logs, args.orders, raw_path)
        summary = "\ndrain: {:.0f} orders/s, processor {:.2f} ms CPU per order".format(
            drain["orders_per_second"], drain["cpu_ms_per_order"].get("order_processor#1", 0)
        )
    say(text)
    say(summary)
    name = f"{args.profile}-profile.txt"
    with open(os.path.join(RESULTS_DIR, name), "w") as out:
        out.write(text + "\n" + summary + "\n")
    say(f"(written to bench-results/{name}; raw stacks in {os.path.relpath(raw_path, ROOT)})")


def main(argv=None):
    logging.basicConfig(level=logging.WARNING)
    # py-amqp warns about a confirm that arrives while a proxy closes its channel.
    logging.getLogger("amqp").setLevel(logging.ERROR)
    args = parse_args(argv)
    # The services run as a deployment at these rates would: without the
    # generator's line per order created (the price line is still printed).
    # The services inherit this process's environment.
    os.environ.setdefault("LOG_CREATED_ORDERS", "false")
    logs = os.path.join(RESULTS_DIR, "logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    if args.profile:
        run_profile(args, os.path.join(logs, "profile"))
        return
    if args.cluster:
        results = run_cluster_profile(args, logs)
        say("")
        say(cluster_table(results))
    elif args.tls:
        results = run_tls_profile(args, logs)
        say("")
        say(tls_table(results))
    else:
        results, figs = run_scenarios(args, logs)
        say("")
        say(table(results, figs))
        if results["tracing_figures"]:
            say("")
            say(tracing_table(results["tracing_figures"]))
        if "tables" in results:
            say(table_size_table(results["tables"]["runs"]))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as out:
        json.dump(results, out, indent=2)
    say(
        f"\nresults: {os.path.relpath(args.output, ROOT)}; service logs: {os.path.relpath(logs, ROOT)}"
    )
    if results["errors"]:
        sys.exit(1)

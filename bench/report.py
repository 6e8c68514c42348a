"""Turning scenario runs into the figures, the targets beside them, and the
printed table. Targets are shown, not enforced."""

import operator

from bench.http_orders import NARROW_GATEWAY_WORKERS
from bench.ingest import CLIENT_CPU_LIMIT_CORES, SECOND_CLIENT_GAIN_LIMIT, client_limits
from bench.stats import median_of
from bench.sustained import GROWTH_TOLERANCE

NAIVE_RATIO_LABEL = "drain, 1 processor / naive nameko pipeline"
# The naive comparison's two drains, and whose CPU per order each reports.
NAIVE_DRAINS = (
    ("naive", ("naive_processor", "naive_generator")),
    ("pipeline", ("order_processor", "order_generator")),
)
# (figure key, label, comparison, threshold, unit)
TARGETS = [
    ("drain_2_orders_per_second", "drain, 2 processors", operator.ge, 1000, "orders/s"),
    ("drain_ratio", "drain, 2 processors / 1 processor", operator.ge, 1.6, "x"),
    ("naive_ratio", NAIVE_RATIO_LABEL, operator.ge, 20, "x"),
    ("latency_p99_ms", "latency p99 at the steady rate", operator.le, 50, "ms"),
    ("metrics_p99_ms", "GET /metrics p99", operator.le, 10, "ms"),
    ("metrics_requests_per_second", "GET /metrics throughput", operator.ge, 1000, "req/s"),
    # The ceiling is the service's, not the RPC client's (bench.ingest).
    (
        "ingest_noop_client_cpu_cores",
        "  RPC client CPU, 1 process",
        operator.lt,
        CLIENT_CPU_LIMIT_CORES,
        "cores",
    ),
    (
        "ingest_second_client_gain",
        "  2 client processes / 1",
        operator.le,
        SECOND_CLIENT_GAIN_LIMIT,
        "x",
    ),
    ("ingest_create_order_ratio", "create_order / do-nothing RPC", operator.ge, 0.6, "x"),
    (
        "ingest_create_orders_per_second",
        "create_orders, 100 x 8 in flight",
        operator.ge,
        5000,
        "orders/s",
    ),
    ("ingest_timer_orders_per_second", "timer at 0.001 s", operator.ge, 500, "orders/s"),
    ("http_orders_ratio", "POST /orders / do-nothing @http route", operator.ge, 0.6, "x"),
    ("http_orders_p99_ms", "POST /orders p99, 32 clients", operator.le, 100, "ms"),
    # Sustained: 1,500/s offered, every order offered processed (within the
    # tolerance the backlog check allows: the counts are sampled, and one
    # create_orders call of the schedule more or less at either end of the
    # window moves a rate by ~1/s), and the backlog not growing (below).
    ("sustained_offered_orders_per_second", "sustained: offered", operator.ge, 1500, "orders/s"),
    (
        "sustained_processed_share",
        "sustained: processed / offered",
        operator.ge,
        1 - GROWTH_TOLERANCE,
        "x",
    ),
    (
        "steady_latency_p99_ms",
        "created -> processed p99 at the offered rate",
        operator.le,
        50,
        "ms",
    ),
    ("sustained_p99_ms", "sustained: created -> processed p99", operator.le, 150, "ms"),
    (
        "sustained_all_cpu_ms_per_order",
        "sustained: CPU per order processed, every process",
        operator.le,
        0.5,
        "ms",
    ),
    # The peak: 3,000/s offered, every order offered processed, backlog flat.
    (
        "sustained_peak_offered_orders_per_second",
        "peak: offered",
        operator.ge,
        3000,
        "orders/s",
    ),
    (
        "sustained_peak_processed_share",
        "peak: processed / offered",
        operator.ge,
        1 - GROWTH_TOLERANCE,
        "x",
    ),
]
INGEST_FIGURES = (
    "noop_calls_per_second",
    "noop_client_cpu_cores",
    "noop_two_clients_calls_per_second",
    "noop_two_clients_cpu_cores",
    "second_client_gain",
    "ceiling_calls_per_second",
    "create_order_per_second",
    "create_order_client_cpu_cores",
    "create_order_ratio",
    "create_orders_per_second",
    "timer_orders_per_second",
    "timer_batched_orders_per_second",
)
# Whose CPU per call the ingest loads report: the called service's process
# (the do-nothing service, or the generator), the broker, the database.
INGEST_CPU_LABELS = ("service", "rabbitmq", "mariadb")
HTTP_FIGURES = (
    "noop_requests_per_second",
    "orders_per_second",
    "ratio",
    "p50_ms",
    "p99_ms",
    "noop_p99_ms",
    "narrow_orders_per_second",
    "narrow_ratio",
    "narrow_p50_ms",
    "narrow_p99_ms",
)
SUSTAINED_FIGURES = (
    "offered_orders_per_second",
    "created_orders_per_second",
    "processed_orders_per_second",
    "backlog_growth_per_second",
    "backlog_end",
)
# The processes whose CPU per order the ingest scenarios report.
PROFILED = ("order_generator", "order_processor", "gateway", "rabbitmq", "mariadb")
RSS_TARGET_MB = 150
SYMBOLS = {operator.ge: ">=", operator.le: "<=", operator.lt: "<"}


def service_of(label):
    """ "order_processor#2" -> "order_processor"."""
    return label.split("#")[0]


def figures(results):
    """The headline numbers (medians over repeated runs) from the runs."""
    out = {}
    drain = results.get("drain", {})
    for processors in (1, 2):
        runs = [run for run in drain.get("runs", []) if run["processors"] == processors]
        out[f"drain_{processors}_orders_per_second"] = median_of(runs, "orders_per_second")
        out[f"drain_{processors}_wall_seconds"] = median_of(runs, "wall_seconds")
        for service in ("order_processor", "order_generator"):
            out[f"drain_{processors}_{service}_cpu_ms_per_order"] = _median_cpu(runs, service)
    if out.get("drain_1_orders_per_second") and out.get("drain_2_orders_per_second"):
        out["drain_ratio"] = out["drain_2_orders_per_second"] / out["drain_1_orders_per_second"]
    out.update(naive_figures(results.get("naive", {}).get("runs", [])))
    latency_runs = [
        dict(run["latency"], rate=run["created_orders_per_second"])
        for run in results.get("latency", {}).get("runs", [])
    ]
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        out["latency_" + key] = median_of(latency_runs, key)
    out["latency_created_orders_per_second"] = median_of(latency_runs, "rate")
    metrics_runs = [
        dict(run.get("latency", {}), rps=run["requests_per_second"], errors=run["errors"])
        for run in results.get("metrics_endpoint", {}).get("runs", [])
    ]
    out["metrics_p50_ms"] = median_of(metrics_runs, "p50_ms")
    out["metrics_p99_ms"] = median_of(metrics_runs, "p99_ms")
    out["metrics_requests_per_second"] = median_of(metrics_runs, "rps")
    out["metrics_errors"] = sum(run["errors"] for run in metrics_runs) if metrics_runs else None
    ingest_runs = results.get("ingest", {}).get("runs", [])
    for key in INGEST_FIGURES:
        out["ingest_" + key] = median_of(ingest_runs, key)
    for load in ("noop", "create_order"):
        for label in INGEST_CPU_LABELS:
            per_run = [
                {"ms": run[f"{load}_cpu_ms_per_call"][label]}
                for run in ingest_runs
                if label in run.get(f"{load}_cpu_ms_per_call", {})
            ]
            out[f"ingest_{load}_{label}_cpu_ms_per_call"] = median_of(per_run, "ms")
    out["ingest_ceiling_client_limits"] = client_limits(
        out["ingest_noop_client_cpu_cores"], out["ingest_second_client_gain"]
    )
    outbox_runs = results.get("outbox", {}).get("runs", [])
    for key in (
        "batched_events_per_second",
        "batched_broker_share",
        "single_events_per_second",
        "single_broker_share",
    ):
        out["outbox_" + key] = median_of(outbox_runs, key)
    http_runs = results.get("http_orders", {}).get("runs", [])
    for key in HTTP_FIGURES:
        out["http_orders_" + key] = median_of(http_runs, key)
    for service in PROFILED:
        out[f"http_orders_{service}_cpu_ms_per_order"] = _median_cpu(http_runs, service)
    for scenario in ("sustained", "sustained_peak", "steady_latency"):
        runs = results.get(scenario, {}).get("runs", [])
        for key in SUSTAINED_FIGURES:
            out[f"{scenario}_{key}"] = median_of(runs, key)
        shares = [
            {"share": run["processed_orders_per_second"] / run["offered_orders_per_second"]}
            for run in runs
            if run.get("processed_orders_per_second") and run.get("offered_orders_per_second")
        ]
        out[f"{scenario}_processed_share"] = median_of(shares, "share")
        grew = [run["backlog_grew"] for run in runs if run.get("backlog_grew") is not None]
        out[f"{scenario}_backlog_grew"] = any(grew) if grew else None
        latency_runs = [run["latency"] for run in runs if run.get("latency")]
        for key in ("p50_ms", "p99_ms"):
            out[f"{scenario}_{key}"] = median_of(latency_runs, key)
        for service in PROFILED:
            out[f"{scenario}_{service}_cpu_ms_per_order"] = _median_cpu(runs, service)
        # Every process's CPU per order, summed within each run, then the median.
        totals = [
            {"all": sum(run["cpu_ms_per_order"].values())}
            for run in runs
            if run.get("cpu_ms_per_order")
        ]
        out[f"{scenario}_all_cpu_ms_per_order"] = median_of(totals, "all")
    out["peak_rss_mb"] = peak_rss(results)
    return out


def naive_figures(runs):
    """Each drain's median rate and CPU per order, and the median of the
    runs' ratios (each of the project's processor to the naive pipeline
    drained beside it, so that a change in load between runs cancels out)."""
    out = {}
    for drain, services in NAIVE_DRAINS:
        drains = [run[drain] for run in runs if run.get(drain)]
        out[f"naive_{drain}_orders_per_second"] = median_of(drains, "orders_per_second")
        for service in services:
            out[f"naive_{drain}_{service}_cpu_ms_per_order"] = _median_cpu(drains, service)
    out["naive_ratio"] = median_of(runs, "ratio")
    # CPU per order moves far less with the machine's load than a rate does.
    cpu_ratios = [
        {"ratio": naive_cpu / pipeline_cpu}
        for naive_cpu, pipeline_cpu in (
            (_cpu_per_order(run.get("naive", {})), _cpu_per_order(run.get("pipeline", {})))
            for run in runs
        )
        if naive_cpu is not None and pipeline_cpu
    ]
    out["naive_cpu_ratio"] = median_of(cpu_ratios, "ratio")
    return out


def _cpu_per_order(run):
    """The CPU ms per order of a drain's processes together, None if none
    was measured (a drain too short to sample)."""
    values = run.get("cpu_ms_per_order", {}).values()
    return sum(values) if values else None


def naive_rows(row, figs):
    row(
        "naive nameko pipeline, 1 processor",
        figs.get("naive_naive_orders_per_second"),
        "orders/s",
        "{:.0f}",
    )
    row(
        "drain, 1 processor, beside it",
        figs.get("naive_pipeline_orders_per_second"),
        "orders/s",
        "{:.0f}",
    )
    row(NAIVE_RATIO_LABEL, figs.get("naive_ratio"), "x", "{:.1f}")
    row(
        "  CPU per order, naive / this project (processor + generator)",
        figs.get("naive_cpu_ratio"),
        "x",
        "{:.1f}",
    )
    for drain, services in NAIVE_DRAINS:
        for service in services:
            row(
                f"  CPU per order, {service} (naive comparison)",
                figs.get(f"naive_{drain}_{service}_cpu_ms_per_order"),
                "ms",
                "{:.2f}",
            )


def _median_cpu(runs, service):
    """Median over runs of the mean CPU ms/order of that service's processes."""
    per_run = []
    for run in runs:
        values = [
            ms
            for label, ms in run.get("cpu_ms_per_order", {}).items()
            if service_of(label) == service
        ]
        if values:
            per_run.append({"ms": sum(values)})
    return median_of(per_run, "ms")


def peak_rss(results):
    """The highest VmHWM of each service over every scenario."""
    peaks = {}
    for scenario in (
        "drain",
        "latency",
        "metrics_endpoint",
        "ingest",
        "http_orders",
        "sustained",
        "sustained_peak",
        "steady_latency",
    ):
        for run in results.get(scenario, {}).get("runs", []):
            for label, mb in run.get("peak_rss_mb", {}).items():
                if mb is not None:
                    service = service_of(label)
                    peaks[service] = max(peaks.get(service, 0), mb)
    return peaks


def target_checks(figs):
    checks = []
    for key, label, compare, threshold, unit in TARGETS:
        value = figs.get(key)
        checks.append(
            {
                "figure": label,
                "value": value,
                "unit": unit,
                "target": f"{SYMBOLS[compare]} {threshold}",
                "met": None if value is None else bool(compare(value, threshold)),
            }
        )
    for scenario, label in (("sustained", "sustained"), ("sustained_peak", "peak")):
        grew = figs.get(f"{scenario}_backlog_grew")
        checks.append(
            {
                "figure": f"{label}: backlog",
                "value": figs.get(f"{scenario}_backlog_growth_per_second"),
                "unit": "",
                "target": "not growing",
                "met": None if grew is None else not grew,
            }
        )
    for service, mb in sorted(figs["peak_rss_mb"].items()):
        checks.append(
            {
                "figure": "peak RSS " + service,
                "value": mb,
                "unit": "MiB",
                "target": f"< {RSS_TARGET_MB}",
                "met": mb < RSS_TARGET_MB,
            }
        )
    return checks


def ingest_rpc_rows(row, figs):
    """The RPC ways in beside the do-nothing ceiling, and whether that
    ceiling is the client's own limit."""
    row(
        "do-nothing RPC, 200 in flight, 1 client process",
        figs.get("ingest_noop_calls_per_second"),
        "calls/s",
        "{:.0f}",
    )
    row("  RPC client CPU, 1 process", figs.get("ingest_noop_client_cpu_cores"), "cores", "{:.2f}")
    row(
        "do-nothing RPC, 200 in flight, 2 client processes",
        figs.get("ingest_noop_two_clients_calls_per_second"),
        "calls/s",
        "{:.0f}",
    )
    row("  2 client processes / 1", figs.get("ingest_second_client_gain"), "x", "{:.2f}")
    row(
        "  RPC client CPU, busier of 2 processes",
        figs.get("ingest_noop_two_clients_cpu_cores"),
        "cores",
        "{:.2f}",
    )
    limits = figs.get("ingest_ceiling_client_limits")
    row(
        "  ceiling set by the client",
        None if limits is None else ("YES: " + "; ".join(limits) if limits else "no"),
        fmt="{}",
    )
    row(
        "create_order, 200 in flight",
        figs.get("ingest_create_order_per_second"),
        "orders/s",
        "{:.0f}",
    )
    row(
        "  RPC client CPU, create_order",
        figs.get("ingest_create_order_client_cpu_cores"),
        "cores",
        "{:.2f}",
    )
    row("create_order / do-nothing RPC", figs.get("ingest_create_order_ratio"), "x", "{:.2f}")
    for load, service in (("noop", "do-nothing service"), ("create_order", "generator")):
        for label, name in zip(INGEST_CPU_LABELS, (service, "rabbitmq", "mariadb")):
            row(
                f"  CPU per call, {name} ({'do-nothing' if load == 'noop' else load})",
                figs.get(f"ingest_{load}_{label}_cpu_ms_per_call"),
                "ms",
                "{:.2f}",
            )
    row(
        "create_orders, 100 x 8 in flight",
        figs.get("ingest_create_orders_per_second"),
        "orders/s",
        "{:.0f}",
    )


def ingest_rows(row, figs):
    """POST /orders beside its ceiling, the sustained run, the latency at a
    steady offered rate, and the CPU each process spends per order in them."""
    row(
        "outbox published in batches of 500",
        figs.get("outbox_batched_events_per_second"),
        "events/s",
        "{:.0f}",
    )
    row(
        "  share of that time on the broker",
        figs.get("outbox_batched_broker_share"),
        fmt="{:.0%}",
    )
    row(
        "outbox published one row at a time",
        figs.get("outbox_single_events_per_second"),
        "events/s",
        "{:.0f}",
    )
    row("  share of that time on the broker", figs.get("outbox_single_broker_share"), fmt="{:.0%}")
    row(
        "do-nothing @http route, 32 clients",
        figs.get("http_orders_noop_requests_per_second"),
        "req/s",
        "{:.0f}",
    )
    row("POST /orders, 32 clients", figs.get("http_orders_orders_per_second"), "orders/s", "{:.0f}")
    row("POST /orders / do-nothing @http route", figs.get("http_orders_ratio"), "x", "{:.2f}")
    row("POST /orders p50, 32 clients", figs.get("http_orders_p50_ms"), "ms")
    row("POST /orders p99, 32 clients", figs.get("http_orders_p99_ms"), "ms")
    row("do-nothing @http route p99", figs.get("http_orders_noop_p99_ms"), "ms")
    narrow = f"POST /orders, gateway with GATEWAY_MAX_WORKERS={NARROW_GATEWAY_WORKERS}"
    row(narrow, figs.get("http_orders_narrow_orders_per_second"), "orders/s", "{:.0f}")
    row(f"  {narrow} / do-nothing", figs.get("http_orders_narrow_ratio"), "x", "{:.2f}")
    row(f"  {narrow}, p50", figs.get("http_orders_narrow_p50_ms"), "ms")
    row(f"  {narrow}, p99", figs.get("http_orders_narrow_p99_ms"), "ms")
    for scenario, label in (("sustained", "sustained"), ("sustained_peak", "peak")):
        for figure, key in (
            ("offered", "offered_orders_per_second"),
            ("created", "created_orders_per_second"),
            ("created -> processed", "processed_orders_per_second"),
        ):
            row(f"{label}: {figure}", figs.get(f"{scenario}_{key}"), "orders/s", "{:.0f}")
        row(f"{label}: processed / offered", figs.get(f"{scenario}_processed_share"), "x", "{:.3f}")
        grew = figs.get(f"{scenario}_backlog_grew")
        growth = figs.get(f"{scenario}_backlog_growth_per_second")
        row(
            f"{label}: backlog",
            {None: None, True: "grew", False: "did not grow"}[grew],
            f"({growth:+.0f} orders/s)" if growth is not None else "",
            "{}",
        )
        row(f"{label}: created -> processed p50", figs.get(f"{scenario}_p50_ms"), "ms")
        row(f"{label}: created -> processed p99", figs.get(f"{scenario}_p99_ms"), "ms")
        row(
            f"{label}: CPU per order processed, every process",
            figs.get(f"{scenario}_all_cpu_ms_per_order"),
            "ms",
            "{:.2f}",
        )
    row(
        "steady latency: offered",
        figs.get("steady_latency_offered_orders_per_second"),
        "orders/s",
        "{:.0f}",
    )
    row(
        "steady latency: processed",
        figs.get("steady_latency_processed_orders_per_second"),
        "orders/s",
        "{:.0f}",
    )
    row("created -> processed p50 at the offered rate", figs.get("steady_latency_p50_ms"), "ms")
    row("created -> processed p99 at the offered rate", figs.get("steady_latency_p99_ms"), "ms")
    for scenario, per in (("http_orders", "order created"), ("sustained", "order processed")):
        for service in PROFILED:
            row(
                f"  CPU per {per}, {service} ({scenario})",
                figs.get(f"{scenario}_{service}_cpu_ms_per_order"),
                "ms",
                "{:.2f}",
            )


def table(results, figs):
    """The printed summary: every figure, with its target where it has one."""
    sizes = results["sizes"]
    targets = {check["figure"]: check for check in target_checks(figs)}
    rows = []

    def row(label, value, unit="", fmt="{:.1f}", target_label=None):
        check = targets.get(target_label or label)
        text = "-" if value is None else f"{fmt.format(value)} {unit}".strip()
        met = "" if check is None or check["met"] is None else ("yes" if check["met"] else "NO")
        rows.append((label, text, check["target"] + " " + check["unit"] if check else "", met))

    for n in (1, 2):
        row(
            "drain, {} processor{}".format(n, "s" if n > 1 else ""),
            figs.get(f"drain_{n}_orders_per_second"),
            "orders/s",
            "{:.0f}",
        )
    row("drain, 2 processors / 1 processor", figs.get("drain_ratio"), "x", "{:.2f}")
    for n in (1, 2):
        for service in ("order_processor", "order_generator"):
            row(
                f"  CPU per order, {service} ({n}p)",
                figs.get(f"drain_{n}_{service}_cpu_ms_per_order"),
                "ms",
                "{:.2f}",
            )
    naive_rows(row, figs)
    row(
        "latency rate achieved", figs.get("latency_created_orders_per_second"), "orders/s", "{:.0f}"
    )
    for pct in ("p50", "p95", "p99"):
        row(
            f"latency {pct}",
            figs.get(f"latency_{pct}_ms"),
            "ms",
            target_label="latency p99 at the steady rate" if pct == "p99" else None,
        )
    for pct in ("p50", "p99"):
        row(
            f"GET /metrics {pct}",
            figs.get(f"metrics_{pct}_ms"),
            "ms",
            target_label="GET /metrics p99" if pct == "p99" else None,
        )
    row("GET /metrics throughput", figs.get("metrics_requests_per_second"), "req/s", "{:.0f}")
    row("GET /metrics errors", figs.get("metrics_errors"), "", "{}")
    ingest_rpc_rows(row, figs)
    row("timer at 0.001 s", figs.get("ingest_timer_orders_per_second"), "orders/s", "{:.0f}")
    row(
        "timer at 0.001 s, ORDERS_PER_TICK=10",
        figs.get("ingest_timer_batched_orders_per_second"),
        "orders/s",
        "{:.0f}",
    )
    ingest_rows(row, figs)
    for service, mb in sorted(figs["peak_rss_mb"].items()):
        row("peak RSS " + service, mb, "MiB", "{:.0f}")

    header = ("figure", "measured", "target", "met")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = [
        "Benchmark: {orders} orders backlog{naive}, latency {latency_seconds:g} s at "
        "{latency_rate:g}/s ({latency_source}), /metrics at {metrics_rows:,} rows with "
        "concurrency {concurrency} for {load_seconds:g} s; {repeat} run(s) each, "
        "medians shown".format(
            **sizes,
            naive=f" ({sizes['naive_orders']} beside the naive pipeline)"
            if "naive_orders" in sizes
            else "",
        ),
        "machine: {cpus} CPUs, load average before {before}, after {after}".format(
            cpus=results["machine"]["cpus"],
            before=" ".join(f"{x:.2f}" for x in results["machine"]["load_before"]),
            after=" ".join(f"{x:.2f}" for x in results["machine"].get("load_after", [])),
        ),
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    for scenario, error in results.get("errors", {}).items():
        lines.append(f"FAILED {scenario}: {error}")
    return "\n".join(lines)

"""The tracing-cost figures: medians per mode, side by side, with the ratio
of each mode to the default (`none`)."""

from bench.stats import median_of
from bench.tracing_cost import MODES

BASELINE = "none"
# (figure suffix, label, unit, format)
ROWS = [
    ("drain_orders_per_second", "drain, 1 processor", "orders/s", "{:.0f}"),
    ("drain_processor_cpu_ms_per_order", "  processor CPU per order", "ms", "{:.3f}"),
    ("drain_generator_cpu_ms_per_order", "  generator CPU per order", "ms", "{:.3f}"),
    ("drain_spans_per_order", "  spans exported per order", "", "{:.2f}"),
    ("latency_created_orders_per_second", "timer rate achieved", "orders/s", "{:.0f}"),
    ("latency_p50_ms", "latency p50", "ms", "{:.1f}"),
    ("latency_p99_ms", "latency p99", "ms", "{:.1f}"),
    ("latency_spans", "  spans exported in the latency run", "", "{:.0f}"),
]


def _cpu(run, service):
    values = [
        ms for label, ms in run.get("cpu_ms_per_order", {}).items() if label.startswith(service)
    ]
    return sum(values) if values else None


def mode_figures(runs):
    """The medians of one mode's runs (drain and latency runs mixed)."""
    drains = [
        {
            "rate": run["orders_per_second"],
            "processor": _cpu(run, "order_processor"),
            "generator": _cpu(run, "order_generator"),
            "spans": run["spans"] / run["orders"],
        }
        for run in runs
        if run["kind"] == "drain"
    ]
    latencies = [
        dict(run["latency"], rate=run["created_orders_per_second"], spans=run["spans"])
        for run in runs
        if run["kind"] == "latency"
    ]
    return {
        "drain_orders_per_second": median_of(drains, "rate"),
        "drain_processor_cpu_ms_per_order": median_of(drains, "processor"),
        "drain_generator_cpu_ms_per_order": median_of(drains, "generator"),
        "drain_spans_per_order": median_of(drains, "spans"),
        "latency_created_orders_per_second": median_of(latencies, "rate"),
        "latency_p50_ms": median_of(latencies, "p50_ms"),
        "latency_p99_ms": median_of(latencies, "p99_ms"),
        "latency_spans": median_of(latencies, "spans"),
        "drain_runs": len(drains),
        "latency_runs": len(latencies),
    }


def ratio(value, baseline):
    if value is None or not baseline:
        return None
    return value / baseline


def tracing_figures(results):
    """{mode: figures} plus {"ratio_<mode>": {figure: mode / none}}."""
    runs = results.get("tracing", {}).get("runs", [])
    if not runs:
        return {}
    out = {mode: mode_figures([run for run in runs if run["mode"] == mode]) for mode in MODES}
    for mode in MODES:
        if mode != BASELINE:
            out["ratio_" + mode] = {
                key: ratio(out[mode][key], out[BASELINE][key]) for key, *_ in ROWS
            }
    return out


def tracing_table(figs):
    """Side by side: each mode's medians, then console / none and
    disabled / none."""
    header = ("tracing cost", *MODES, "console / none", "disabled / none")
    rows = []
    for key, label, unit, fmt in ROWS:
        cells = [label]
        for mode in MODES:
            value = figs[mode][key]
            cells.append("-" if value is None else f"{fmt.format(value)} {unit}".strip())
        for mode in ("console", "disabled"):
            value = figs["ratio_" + mode][key]
            cells.append("-" if value is None else f"{value:.2f} x")
        rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    runs = ", ".join(
        f"{mode} {figs[mode]['drain_runs']} + {figs[mode]['latency_runs']}" for mode in MODES
    )
    lines = [
        f"Tracing: medians per mode (drain + latency runs: {runs}); ratios of medians to `none`",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)

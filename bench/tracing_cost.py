"""Scenario: what tracing costs. The same drain (and, at a steady rate, the
same created -> processed latency) with tracing in three modes:

- "none": OTEL_TRACES_EXPORTER=none, the default: no SDK, the API's
  non-recording spans;
- "disabled": OTEL_SDK_DISABLED=true (with the console exporter asked for,
  to show the switch wins): the nearest to a pipeline without tracing, as
  the Tracing provider still runs but the SDK is never set up;
- "console": the SDK recording every span and the console exporter writing
  each as a JSON line to the service's standard output, which the harness
  sends to the process's log file.

The spans in the log files are counted after each run, so a "console"
figure with no spans behind it fails instead of passing for a cheap
tracer, and a "none" or "disabled" run that exported spans fails too.

The modes take turns within each repetition (none, disabled, console,
none, ...), so a change in the shared machine's load falls on all three.
The latency run uses the generator's own timer (`--latency-source timer`)
so that the generator's spans (its tick, commit and publish) are in it;
the drain's backlog is queued directly, so it measures the processor's
spans and the generator's get_orders.
"""

import collections
import json
import os

from bench.drain import run_drain
from bench.latency import run_latency

MODES = {
    "none": {"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "none"},
    "disabled": {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
    "console": {"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"},
}
EXPORTING_MODES = ("console",)


def span_names(lines):
    """Counter of span names among log lines: a span is a line holding a JSON
    object with a context.span_id (what the console exporter writes; JSON
    log lines have no `context`)."""
    names = collections.Counter()
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("context"), dict):
            if record["context"].get("span_id"):
                names[record.get("name")] += 1
    return names


def spans_in_logs(log_dir):
    """Counter of span names over every service log file in `log_dir`."""
    names = collections.Counter()
    for entry in sorted(os.listdir(log_dir)):
        if entry.endswith(".log"):
            with open(os.path.join(log_dir, entry), errors="replace") as log:
                names += span_names(log)
    return names


def check_spans(mode, spans):
    """Fail unless spans were exported exactly when the mode exports them."""
    total = sum(spans.values())
    if mode in EXPORTING_MODES and total == 0:
        raise RuntimeError(f"tracing mode {mode!r} exported no spans: the figure would be false")
    if mode not in EXPORTING_MODES and total:
        raise RuntimeError(f"tracing mode {mode!r} exported {total} spans; it should export none")


def run_tracing_drain(log_dir, mode, orders):
    drain = run_drain(log_dir, orders, 1, settings=MODES[mode])
    spans = spans_in_logs(log_dir)
    check_spans(mode, spans)
    return {
        "mode": mode,
        "kind": "drain",
        **drain,
        "spans": sum(spans.values()),
        "span_names": dict(spans),
    }


def run_tracing_latency(log_dir, mode, per_second, seconds):
    latency = run_latency(log_dir, per_second, seconds, "timer", settings=MODES[mode])
    spans = spans_in_logs(log_dir)
    check_spans(mode, spans)
    return {
        "mode": mode,
        "kind": "latency",
        **latency,
        "spans": sum(spans.values()),
        "span_names": dict(spans),
    }

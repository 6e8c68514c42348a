"""Where a service's CPU goes: py-spy samples one service process under
load, then the functions most often on the stack are listed.

    python -m bench --profile [--orders N]                 # a processor, draining a backlog
    python -m bench --profile generator [--ingest-seconds S]   # the generator, under create_order
    python -m bench --profile sustained [--sustained-rate R]   # every process, end to end

py-spy (`--gil`) samples the processor only while it holds the GIL, i.e.
runs Python code, and sees whichever greenthread is running, so the figures
are CPU time: a function's "cumulative" share is the share of samples with
that function anywhere on the stack, "self" with it on top. Start-up,
shutdown and imports are left out. Waiting (database, broker, RPC replies)
is not sampled; compare the drain's cpu_ms_per_order with 1000 / its
orders_per_second to see how much of an order's time is waiting.

(cProfile is not used: it follows one call stack per thread, so greenthread
switches corrupt its cumulative times.)
"""

import collections
import os
import shutil
import subprocess
import sys

from bench.drain import run_drain
from bench.ingest import declare_events_queue
from bench.process_stats import cpu_seconds
from bench.rpc_clients import IN_FLIGHT, rpc_load
from bench.sustained import run_sustained
from harness.sandbox import sandbox, wait_for_rpc

PY_SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")
SAMPLES_PER_SECOND = 200
# Stacks rooted in the script's top level are the main greenthread starting
# or stopping the service; _find_and_load is an import.
MAIN_FRAME = "<module> ("
IMPORT_FRAME = "_find_and_load ("
TOP = 25


def py_spy():
    path = PY_SPY if os.path.exists(PY_SPY) else shutil.which("py-spy")
    if path is None:
        raise RuntimeError("py-spy is not installed: run `make install` (requirements-dev.txt)")
    return path


def record(pid, raw_path, log_path):
    """py-spy sampling `pid` into `raw_path` until that process exits."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--function",
                "--gil",
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--output",
                raw_path,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def profile_drain(log_dir, orders, raw_path):
    """Drain `orders` with one sampled processor; returns (drain figures,
    the report text). py-spy's collapsed stacks are kept in `raw_path`."""
    py_spy()  # fail before the drain if it is missing
    spies = []

    def start(pipeline):
        process = pipeline.start_service("processor_service")
        spies.append(record(process.process.pid, raw_path, os.path.join(log_dir, "py-spy.log")))
        return process

    try:
        drain = run_drain(log_dir, orders, 1, start=start)
    finally:
        for spy in spies:  # py-spy writes its file when the process exits
            spy.wait(60)
    with open(raw_path) as raw:
        cumulative, own, total = tally(raw)
    what = f"Processor CPU in Python code while draining {orders} orders"
    return drain, report(cumulative, own, total, orders, what)


def profile_create_order(log_dir, seconds, raw_path):
    """create_order with IN_FLIGHT calls in flight for `seconds`, the
    generator sampled; returns (the load's figures with the generator's CPU
    per call, the report text)."""
    py_spy()
    with sandbox(log_dir, GENERATE_ON_FIRST_START="false") as pipeline:
        declare_events_queue(pipeline.amqp_uri)
        generator = pipeline.start_service("generator_service")
        wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])
        pid = generator.process.pid
        spy = record(pid, raw_path, os.path.join(log_dir, "py-spy.log"))
        try:
            before = cpu_seconds(pid)
            load = rpc_load(
                pipeline.amqp_uri, "order_generator", "create_order", [3], seconds=seconds
            )
            load["generator_cpu_ms_per_call"] = (
                (cpu_seconds(pid) - before) / load["answered"] * 1000
            )
            generator.stop()
        finally:
            spy.wait(60)
    with open(raw_path) as raw:
        cumulative, own, total = tally(raw)
    what = (
        f"Generator CPU in Python code while answering {load['answered']} create_order calls "
        f"({IN_FLIGHT} in flight)"
    )
    return load, report(cumulative, own, total, load["answered"], what)


def profile_sustained(log_dir, per_second, seconds, raw_dir):
    """The sustained run (one generator, two processors, orders offered
    through create_orders at `per_second`) with every service under py-spy;
    returns (the run's figures, the report text): the CPU per order of each
    process from /proc (RabbitMQ and MariaDB included), then each service's
    top functions."""
    py_spy()
    spies = []

    def start_spies(services):
        for label, process in services:
            raw_path = os.path.join(raw_dir, f"sustained-{label.replace('#', '')}.raw.txt")
            spy = record(process.process.pid, raw_path, os.path.join(log_dir, "py-spy.log"))
            spies.append((label, raw_path, spy))

    try:
        run = run_sustained(log_dir, per_second, seconds, on_started=start_spies)
    finally:
        for _, _, spy in spies:
            spy.wait(60)
    cpu = run["cpu_ms_per_order"]
    lines = [
        f"Sustained: {per_second}/s offered for {seconds} s; created "
        f"{run['created_orders_per_second']:.0f}/s, processed {run['processed_orders_per_second']:.0f}/s; "
        f"p50 {run['latency'].get('p50_ms', float('nan')):.1f} ms, "
        f"p99 {run['latency'].get('p99_ms', float('nan')):.1f} ms created -> processed",
        "",
        "== CPU ms per order processed, from /proc (the servers are the machine's own) ==",
    ]
    lines += [f"{cpu[label]:>8.3f}  {label}" for label in sorted(cpu)]
    lines.append(f"{sum(cpu.values()):>8.3f}  all")
    for label, raw_path, _ in spies:
        with open(raw_path) as raw:
            cumulative, own, total = tally(raw)
        what = f"{label}: CPU in Python code over {run['orders']} orders (whole run)"
        lines += ["", report(cumulative, own, total, run["orders"], what)]
    return run, "\n".join(lines)


def tally(lines):
    """Sample counts per frame from py-spy's raw format ("outer;...;inner
    count" per line): (cumulative, self, total samples), leaving out
    start-up, shutdown and imports, and samples with no Python frame."""
    cumulative, own = collections.Counter(), collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or stack.startswith(MAIN_FRAME) or IMPORT_FRAME in stack:
            continue
        frames = stack.split(";")
        count = int(count)
        total += count
        for frame in set(frames):
            cumulative[frame] += count
        own[frames[-1]] += count
    return cumulative, own, total


def report(cumulative, own, total, orders, what, top=TOP):
    sampled = total / SAMPLES_PER_SECOND
    lines = [f"{what}: ~{sampled:.1f} s sampled, ~{sampled / orders * 1000:.2f} ms per order"]
    for title, counts in (("cumulative", cumulative), ("self", own)):
        lines += [
            "",
            f"== top {top} by {title} CPU ==",
            "{:>7} {:>9}  function".format("share", "ms/order"),
        ]
        for frame, count in counts.most_common(top):
            lines.append(
                f"{100 * count / total:>6.1f}% {count / SAMPLES_PER_SECOND / orders * 1000:>9.3f}  {frame}"
            )
    return "\n".join(lines)

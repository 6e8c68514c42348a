"""The benchmark's arithmetic and reporting: percentiles, rates, the
profile's tallies, the figures and targets. (The scenarios themselves run
against the real services: `make bench-smoke`.)"""

import json
import os
import re
from collections import Counter

import kombu.serialization
import pytest
from nameko.exceptions import serialize

from bench import rpc_load, table_size
from bench.cli import SIZES, parse_args, plan
from bench.drain import summarise as summarise_drain
from bench.http_orders import summarise as summarise_http
from bench.ingest import client_limits
from bench.ingest import summarise as summarise_ingest
from bench.latency import summarise as summarise_latency
from bench.process_stats import CpuPerOrder, cpu_seconds, peak_rss_mb
from bench.profile import tally
from bench.report import figures, table, target_checks
from bench.rpc_clients import combine, in_flight_shares
from bench.stats import latency_summary, percentile, rate
from bench.sustained import slope
from bench.sustained import summarise as summarise_sustained
from bench.tracing_cost import MODES, check_spans, span_names
from bench.tracing_report import tracing_figures, tracing_table
from order_contract import InvalidQuantity


def test_percentile_is_nearest_rank():
    values = list(range(100, 0, -1))  # 100..1, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.5], 99) == 7.5
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_summary_is_in_milliseconds():
    summary = latency_summary([0.001 * n for n in range(1, 101)])
    assert summary["count"] == 100
    assert summary["p50_ms"] == pytest.approx(50)
    assert summary["p95_ms"] == pytest.approx(95)
    assert summary["p99_ms"] == pytest.approx(99)
    assert summary["max_ms"] == pytest.approx(100)


def test_rate_counts_intervals_between_first_and_last_event():
    assert rate(11, 100.0, 110.0) == 1.0
    assert rate(1, 100.0, 110.0) is None
    assert rate(5, 100.0, 100.0) is None


def test_drain_rate_comes_from_processed_times_not_startup():
    times = [1000.0 + n / 500 for n in range(1000)]  # 500 orders/s
    result = summarise_drain(
        1000,
        2,
        times,
        launched=990.0,
        finished=1003.0,
        backlog={"seconds": 1.0, "queues": ["q"]},
        memory={},
        cpu={},
    )
    assert result["orders_per_second"] == pytest.approx(500)
    assert result["steady_orders_per_second"] == pytest.approx(500)
    assert result["startup_seconds"] == pytest.approx(10)
    assert result["wall_seconds"] == pytest.approx(13)


def test_latency_leaves_out_the_warmup():
    # Orders at 10/s for 5 s; the first 2 s take 1 s each, the rest 20 ms.
    rows = [(n, 100 + n / 10, 100 + n / 10 + (1.0 if n < 20 else 0.02)) for n in range(50)]
    result = summarise_latency(rows, 10, 3, 2, "inprocess", 0.0, [], {})
    assert result["latency"]["count"] == 30
    assert result["latency"]["p99_ms"] == pytest.approx(20)
    assert result["created_orders_per_second"] == pytest.approx(10)


def test_profile_tally_counts_each_frame_once_per_stack_and_skips_startup():
    raw = [
        "GreenThread.main (g.py:1);handle (s.py:2);execute (e.py:3) 6\n",
        "GreenThread.main (g.py:1);handle (s.py:2);handle (s.py:2) 2\n",
        "<module> (nameko:1);main (m.py:1);monkey_patch (p.py:1) 50\n",
        "GreenThread.main (g.py:1);_find_and_load (<frozen>:1) 9\n",
        " 4\n",
    ]
    cumulative, own, total = tally(raw)
    assert total == 8
    assert cumulative["GreenThread.main (g.py:1)"] == 8
    assert cumulative["handle (s.py:2)"] == 8
    assert own["execute (e.py:3)"] == 6
    assert own["handle (s.py:2)"] == 2
    assert "monkey_patch (p.py:1)" not in cumulative


def drain_run(processors, orders_per_second, rss):
    return {
        "processors": processors,
        "orders_per_second": orders_per_second,
        "wall_seconds": 10,
        "peak_rss_mb": rss,
        "cpu_ms_per_order": {"order_processor#1": 1.0, "order_processor#2": 1.5},
    }


RESULTS = {
    "sizes": {
        "orders": 100,
        "latency_seconds": 3,
        "latency_rate": 100,
        "latency_source": "inprocess",
        "metrics_rows": 1000,
        "concurrency": 4,
        "load_seconds": 2,
        "repeat": 3,
    },
    "machine": {"cpus": 2, "load_before": [0.5, 0.5, 0.5], "load_after": [1, 1, 1]},
    "drain": {
        "runs": [
            drain_run(1, 400, {"order_processor#1": 80}),
            drain_run(1, 500, {"order_processor#1": 90}),
            drain_run(1, 900, {"order_processor#1": 85}),
            drain_run(2, 700, {"order_processor#1": 100, "order_processor#2": 160}),
            drain_run(2, 800, {"order_generator": 70}),
            drain_run(2, 1200, {}),
        ]
    },
    "latency": {
        "runs": [
            {"created_orders_per_second": 100, "latency": {"p50_ms": 5, "p95_ms": 20, "p99_ms": 40}}
        ]
    },
    "metrics_endpoint": {
        "runs": [
            {
                "requests_per_second": 900,
                "errors": 0,
                "latency": {"p50_ms": 4, "p99_ms": 12},
                "peak_rss_mb": {"gateway": 60},
            }
        ]
    },
}


def test_figures_are_medians_and_peaks_per_service():
    figs = figures(RESULTS)
    assert figs["drain_1_orders_per_second"] == 500
    assert figs["drain_2_orders_per_second"] == 800
    assert figs["drain_ratio"] == pytest.approx(1.6)
    assert figs["drain_2_order_processor_cpu_ms_per_order"] == pytest.approx(2.5)
    assert figs["latency_p99_ms"] == 40
    assert figs["peak_rss_mb"] == {"order_processor": 160, "order_generator": 70, "gateway": 60}


def test_targets_say_which_are_met():
    checks = {check["figure"]: check for check in target_checks(figures(RESULTS))}
    assert checks["drain, 2 processors"]["met"] is False
    assert checks["drain, 2 processors / 1 processor"]["met"] is True
    assert checks["latency p99 at the steady rate"]["met"] is True
    assert checks["GET /metrics p99"]["met"] is False
    assert checks["peak RSS order_processor"]["met"] is False
    assert checks["peak RSS gateway"]["met"] is True


def test_table_shows_figures_targets_and_missing_scenarios():
    results = dict(RESULTS)
    del results["latency"]
    rows = {}
    for line in table(results, figures(results)).splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    assert rows["drain, 2 processors"] == ["800 orders/s", ">= 1000 orders/s", "NO"]
    assert rows["drain, 2 processors / 1 processor"] == ["1.60 x", ">= 1.6 x", "yes"]
    assert rows["latency p99"] == ["-", "<= 50 ms"]
    assert rows["peak RSS gateway"] == ["60 MiB", "< 150 MiB", "yes"]


def test_smoke_sizes_are_small_and_explicit_options_win():
    smoke = parse_args(["--smoke"])
    full = parse_args([])
    assert smoke.orders < full.orders == 20_000
    assert full.metrics_rows == 1_000_000 and full.latency_rate == 100
    assert parse_args(["--smoke", "--orders", "50"]).orders == 50
    with pytest.raises(SystemExit):
        parse_args(["--scenarios", "drain,nope"])


class _Running:
    def __init__(self, pid):
        self.process = type("Popen", (), {"pid": pid})()


def test_process_figures_come_from_proc():
    assert peak_rss_mb(os.getpid()) > 10
    assert cpu_seconds(os.getpid()) > 0
    meter = CpuPerOrder([("me", _Running(os.getpid()))])
    meter.sample(0)  # nothing processed yet: ignored
    meter.sample(10)
    sum(range(10_000_000))  # burn some CPU
    meter.sample(110)
    assert meter.ms_per_order()["me"] > 0
    assert meter.first[0] == 10


SPAN_LINE = (
    '{"name": "order_processor.handle_order_created", "context": {"trace_id": "0x1",'
    ' "span_id": "0x2"}, "kind": "SpanKind.CONSUMER"}\n'
)


def test_span_names_count_console_spans_and_nothing_else():
    lines = [
        "2026-11-29 13:00:00,000 INFO orders: Order 1 OrderExecutionPrice 10.00\n",
        SPAN_LINE,
        SPAN_LINE,
        '{"time": "2026-11-29T13:00:00Z", "level": "INFO", "message": "json log line"}\n',
        '{"name": "cut off", "context": {"span_id"\n',  # a partly written last line
        '{"name": "insert order_process", "context": {"span_id": "0x3"}}\n',
    ]
    assert span_names(lines) == {
        "order_processor.handle_order_created": 2,
        "insert order_process": 1,
    }


def test_spans_must_be_exported_exactly_when_the_mode_exports():
    check_spans("console", Counter(a=3))
    check_spans("none", Counter())
    check_spans("disabled", Counter())
    with pytest.raises(RuntimeError, match="exported no spans"):
        check_spans("console", Counter())
    with pytest.raises(RuntimeError, match="should export none"):
        check_spans("disabled", Counter(a=1))


def _tracing_run(mode, kind, rate, spans, p99=None):
    if kind == "drain":
        return {
            "mode": mode,
            "kind": "drain",
            "orders": 100,
            "orders_per_second": rate,
            "cpu_ms_per_order": {"order_generator": 0.1, "order_processor#1": rate / 1000},
            "spans": spans,
        }
    return {
        "mode": mode,
        "kind": "latency",
        "created_orders_per_second": rate,
        "latency": {"p50_ms": p99 / 2, "p99_ms": p99},
        "spans": spans,
    }


def test_tracing_figures_are_medians_per_mode_and_ratios_to_none():
    runs = [
        _tracing_run("none", "drain", 1000, 0),
        _tracing_run("none", "drain", 1200, 0),
        _tracing_run("none", "drain", 5000, 0),  # an outlier the median ignores
        _tracing_run("disabled", "drain", 1100, 0),
        _tracing_run("console", "drain", 600, 250),
        _tracing_run("console", "drain", 900, 350),
        _tracing_run("none", "latency", 80, 0, p99=20),
        _tracing_run("console", "latency", 70, 900, p99=50),
    ]
    figs = tracing_figures({"tracing": {"runs": runs}})
    assert figs["none"]["drain_orders_per_second"] == 1200
    assert figs["console"]["drain_orders_per_second"] == 750
    assert figs["console"]["drain_spans_per_order"] == pytest.approx(3.0)
    assert figs["ratio_console"]["drain_orders_per_second"] == pytest.approx(750 / 1200)
    assert figs["ratio_disabled"]["drain_orders_per_second"] == pytest.approx(1100 / 1200)
    assert figs["ratio_console"]["latency_p99_ms"] == pytest.approx(2.5)
    assert figs["disabled"]["latency_p99_ms"] is None
    assert figs["ratio_disabled"]["latency_p99_ms"] is None
    rows = {}
    for line in tracing_table(figs).splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    assert rows["drain, 1 processor"] == [
        "1200 orders/s",
        "1100 orders/s",
        "750 orders/s",
        "0.62 x",
        "0.92 x",
    ]
    assert rows["latency p99"] == ["20.0 ms", "-", "50.0 ms", "2.50 x", "-"]
    assert tracing_figures({}) == {}


def test_tracing_modes_take_turns_and_the_smoke_skips_their_latency_runs():
    args = parse_args(["--scenarios", "tracing", "--tracing-repeat", "2"])
    titles = [title for _, title, _ in plan(args, "/logs")]
    modes = [title.split(":")[0].split()[1] for title in titles]
    assert modes == [mode for mode in list(MODES) * 2 for _ in ("drain", "latency")]
    assert list(MODES) == ["none", "disabled", "console"]
    smoke = parse_args(["--smoke", "--scenarios", "tracing"])
    smoke_titles = [title for _, title, _ in plan(smoke, "/logs")]
    assert len(smoke_titles) == len(MODES)
    assert all("drain" in title for title in smoke_titles)


def test_cpu_per_order_takes_a_pid_as_well_as_a_process():
    meter = CpuPerOrder([("me", os.getpid())])
    meter.sample(10)
    sum(range(10_000_000))
    meter.sample(20)
    assert meter.ms_per_order()["me"] > 0


def test_the_backlog_slope_is_least_squares():
    assert slope([(0, 5), (1, 7), (2, 9)]) == pytest.approx(2)
    assert slope([(0, 5), (1, 3), (2, 7), (3, 5)]) == pytest.approx(0.4)
    assert slope([(1, 5)]) is None


def sustained_summary(backlogs, per_second=100):
    """A sustained run whose backlog, sampled once a second from t=10,
    is `backlogs`; processing keeps 50 ms behind creation."""
    samples = [(10 + n, 1000 + 100 * n, 1000 + 100 * n - b) for n, b in enumerate(backlogs)]
    rows = [(n, 5000 + n / 100, 5000 + n / 100 + 0.05) for n in range(1000)]
    return summarise_sustained(
        rows,
        samples,
        per_second,
        seconds=len(backlogs),
        measure_from=10,
        offered_until=10 + len(backlogs),
        latency_from=5002,
        lateness=0.0,
        errors=[],
        cpu={},
        memory={},
    )


def test_a_sustained_run_says_whether_its_backlog_grew():
    steady = sustained_summary([10, 30, 5, 20, 15, 10])
    assert steady["backlog_grew"] is False
    assert steady["created_orders_per_second"] == pytest.approx(100)
    assert steady["latency"]["p99_ms"] == pytest.approx(50)
    assert steady["latency"]["count"] == 800  # those created after latency_from
    growing = sustained_summary([10, 20, 30, 40, 50, 60])
    assert growing["backlog_grew"] is True
    assert growing["backlog_growth_per_second"] == pytest.approx(10)
    assert growing["processed_orders_per_second"] == pytest.approx(90)
    # Read against what was created (100/s), not a far higher offer.
    assert sustained_summary([10, 20, 30, 40, 50, 60], per_second=1500)["backlog_grew"] is True


def test_post_orders_is_read_against_the_do_nothing_route_and_per_order_cpu():
    load = {
        "concurrency": 32,
        "seconds": 10,
        "errors": 0,
        "first_errors": [],
        "client_cpu_seconds": 1.0,
    }
    result = summarise_http(
        dict(load, requests_per_second=1000, latency={"p99_ms": 20}),
        dict(load, requests_per_second=600, latency={"p50_ms": 30, "p99_ms": 80}),
        created=6000,
        before={"gateway": 1.0, "rabbitmq": 5.0},
        after={"gateway": 7.0, "rabbitmq": 8.0},
        memory={},
    )
    assert result["ratio"] == pytest.approx(0.6)
    assert result["p99_ms"] == 80
    assert result["cpu_ms_per_order"] == {"gateway": 1.0, "rabbitmq": 0.5}


def test_ingest_figures_and_targets():
    results = dict(
        RESULTS,
        http_orders={"runs": [{"ratio": 0.5, "p99_ms": 90, "cpu_ms_per_order": {"gateway": 2}}]},
        sustained={
            "runs": [
                {
                    "offered_orders_per_second": 1500,
                    "processed_orders_per_second": 1400,
                    "backlog_grew": False,
                },
                {
                    "offered_orders_per_second": 1500,
                    "processed_orders_per_second": 1600,
                    "backlog_grew": True,
                },
            ]
        },
        steady_latency={"runs": [{"latency": {"p50_ms": 10, "p99_ms": 30}}]},
    )
    figs = figures(results)
    assert figs["http_orders_gateway_cpu_ms_per_order"] == 2
    assert figs["sustained_processed_orders_per_second"] == 1500
    assert figs["sustained_backlog_grew"] is True
    checks = {check["figure"]: check["met"] for check in target_checks(figs)}
    assert checks["POST /orders / do-nothing @http route"] is False
    assert checks["POST /orders p99, 32 clients"] is True
    assert checks["sustained: offered"] is True
    assert figs["sustained_processed_share"] == pytest.approx(1.0)
    assert checks["sustained: processed / offered"] is True
    assert checks["sustained: backlog"] is False  # one run's backlog grew
    assert checks["created -> processed p99 at the offered rate"] is True
    rows = {}
    for line in table(results, figs).splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    assert rows["sustained: backlog"][0] == "grew"
    assert rows["sustained: backlog"][-1] == "NO"


def test_a_sustained_run_that_kept_up_within_the_sampling_meets_its_target():
    # 1,499/s processed of 1,500/s offered, the backlog flat: every order
    # offered was taken (a rate read from sampled counts is not exact).
    kept_up = {
        "offered_orders_per_second": 1500,
        "processed_orders_per_second": 1499,
        "backlog_grew": False,
    }
    fell_behind = dict(kept_up, processed_orders_per_second=1400, backlog_grew=True)
    for run, met in ((kept_up, True), (fell_behind, False)):
        figs = figures(dict(RESULTS, sustained={"runs": [run]}))
        checks = {check["figure"]: check["met"] for check in target_checks(figs)}
        assert checks["sustained: processed / offered"] is met
        assert checks["sustained: backlog"] is met


def table_rows(results):
    rows = {}
    for line in table(results, figures(results)).splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def test_every_size_is_an_option_of_its_type_and_the_smoke_takes_the_small_ones():
    full, smoke = parse_args([]), parse_args(["--smoke"])
    for key, (full_size, smoke_size, _what) in SIZES.items():
        assert getattr(full, key) == full_size
        assert getattr(smoke, key) == smoke_size
    args = parse_args(["--ingest-seconds", "2.5", "--tracing-repeat", "2"])
    assert args.ingest_seconds == 2.5 and args.tracing_repeat == 2
    with pytest.raises(SystemExit):
        parse_args(["--orders", "2.5"])  # a count, not a duration


def test_the_ingest_plan_names_its_seconds():
    args = parse_args(["--scenarios", "ingest", "--ingest-seconds", "4", "--repeat", "2"])
    titles = [title for _, title, _ in plan(args, "/logs")]
    assert len(titles) == 2
    assert "for 4 s each" in titles[0]


def test_calls_in_flight_are_shared_evenly_by_the_client_processes():
    assert in_flight_shares(200, 1) == [200]
    assert in_flight_shares(200, 2) == [100, 100]
    assert in_flight_shares(201, 2) == [101, 100]
    for impossible in ((1, 2), (200, 0)):
        with pytest.raises(ValueError):
            in_flight_shares(*impossible)


def client_run(rate, cpu, in_flight=100, errors=()):
    return {
        "in_flight": in_flight,
        "calls_per_second": rate,
        "answered": int(rate * 12),
        "errors": len(errors),
        "first_errors": list(errors),
        "client_cpu_cores": cpu,
    }


def test_client_processes_measuring_one_window_add_up():
    both = combine([client_run(700, 0.10), client_run(650, 0.12, errors=["Boom: x"])])
    assert both["processes"] == 2
    assert both["in_flight"] == 200
    assert both["calls_per_second"] == 1350
    assert both["answered"] == 700 * 12 + 650 * 12
    assert both["client_cpu_cores"] == 0.12  # the busier process
    assert both["errors"] == 1 and both["first_errors"] == ["Boom: x"]


def test_the_ceiling_is_the_clients_when_it_is_busy_or_a_second_client_raises_it():
    assert client_limits(0.2, 1.02) == []
    assert client_limits(0.2, 0.9) == []  # a second client that lowers it says nothing
    assert client_limits(0.5, 1.0) == ["one client process used 0.50 cores"]
    assert client_limits(0.1, 1.25) == ["a second client process raised the rate 1.25 x"]
    assert len(client_limits(0.7, 1.5)) == 2
    assert client_limits(None, 1.05) == []
    assert client_limits(None, None) is None


def test_create_order_is_read_against_the_higher_do_nothing_rate():
    noop_one, noop_two = client_run(1400, 0.2, 200), client_run(1450, 0.1, 200)
    single, bulk = client_run(600, 0.1, 200), client_run(90, 0.05, 8)
    figs = summarise_ingest(noop_one, noop_two, single, bulk)
    assert figs["ceiling_calls_per_second"] == 1450
    assert figs["create_order_ratio"] == pytest.approx(600 / 1450)
    assert figs["second_client_gain"] == pytest.approx(1450 / 1400)
    assert figs["ceiling_client_limits"] == []
    assert figs["create_orders_per_second"] == 9000
    lower = summarise_ingest(noop_one, client_run(1200, 0.1, 200), single, bulk)
    assert lower["create_order_ratio"] == pytest.approx(600 / 1400)


def ingest_run(noop, noop_two, cpu, create_order):
    one, two = client_run(noop, cpu, 200), client_run(noop_two, 0.1, 200)
    return summarise_ingest(one, two, client_run(create_order, 0.1, 200), client_run(90, 0.1, 8))


def test_the_table_flags_a_ceiling_that_is_the_clients():
    quiet = dict(
        RESULTS,
        ingest={
            "runs": [
                ingest_run(1400, 1420, 0.20, 600),
                ingest_run(1300, 1350, 0.25, 700),
                ingest_run(1500, 1480, 0.22, 650),
            ]
        },
    )
    rows = table_rows(quiet)
    assert rows["do-nothing RPC, 200 in flight, 1 client process"] == ["1400 calls/s"]
    assert rows["RPC client CPU, 1 process"] == ["0.22 cores", "< 0.5 cores", "yes"]
    assert rows["2 client processes / 1"][1:] == ["<= 1.1 x", "yes"]
    assert rows["ceiling set by the client"] == ["no"]
    # The median of each run's ratio (600/1420, 700/1350, 650/1500).
    assert rows["create_order / do-nothing RPC"] == ["0.43 x", ">= 0.6 x", "NO"]
    capped = dict(RESULTS, ingest={"runs": [ingest_run(700, 1300, 0.6, 600)]})
    rows = table_rows(capped)
    assert rows["RPC client CPU, 1 process"] == ["0.60 cores", "< 0.5 cores", "NO"]
    assert rows["2 client processes / 1"] == ["1.86 x", "<= 1.1 x", "NO"]
    assert rows["ceiling set by the client"][0].startswith("YES: one client process used 0.60")
    # Read against the two processes' 1,300 calls/s, not the capped 700.
    assert rows["create_order / do-nothing RPC"] == ["0.46 x", ">= 0.6 x", "NO"]
    assert table_rows(RESULTS)["ceiling set by the client"] == ["-"]


def test_the_lean_client_speaks_nameko_rpc():
    body = rpc_load.request_body([3], {"when": "now"})
    # The service decodes it by its content type, as nameko's Responder does.
    assert kombu.serialization.loads(body, "application/json", "utf-8") == {
        "args": [3],
        "kwargs": {"when": "now"},
    }
    assert rpc_load.reply_error(json.dumps({"result": {"id": 1}, "error": None})) is None
    error = serialize(InvalidQuantity("quantity must be 1..100"))
    assert (
        rpc_load.reply_error(json.dumps({"result": None, "error": error}))
        == "InvalidQuantity: quantity must be 1..100"
    )


def test_the_lean_client_reads_an_amqp_uri_as_kombu_does():
    assert rpc_load.connection_parameters("amqp://u%40x:p%2Fw@broker:5673/orders_test_1") == {
        "host": "broker:5673",
        "userid": "u@x",
        "password": "p/w",
        "virtual_host": "orders_test_1",
    }
    assert rpc_load.connection_parameters("amqp://guest:guest@localhost/")["virtual_host"] == "/"
    assert rpc_load.connection_parameters("amqp://localhost/%2F")["virtual_host"] == "/"
    with pytest.raises(ValueError):
        rpc_load.connection_parameters("amqps://localhost/")


def test_the_lean_client_counts_answers_in_its_window_only():
    window = rpc_load.Window(measure_from=100.0, stop_at=110.0)
    assert window.see(99.0) is True
    for moment in (99.5, 100.0, 105.0, 109.99, 110.0, 111.0):
        window.answered(moment)
    assert window.answers == 3
    assert window.cpu_cores() is None  # not closed yet
    window.see(100.0)
    assert window.see(110.0) is False
    assert window.cpu_cores() >= 0


def test_the_lean_client_refuses_arguments_that_are_not_a_call():
    args = rpc_load.parse_args(["amqp://localhost/", "svc", "method", "--args", "[[3, 4]]"])
    assert args.args == [[3, 4]] and args.kwargs == {} and args.in_flight == 200
    for wrong in (["--args", '{"a": 1}'], ["--kwargs", "[1]"], ["--in-flight", "0"]):
        with pytest.raises(SystemExit):
            rpc_load.parse_args(["amqp://localhost/", "svc", "method", *wrong])


def test_profile_names_the_service_and_defaults_to_the_processor():
    assert parse_args([]).profile is None
    assert parse_args(["--profile"]).profile == "processor"
    assert parse_args(["--profile", "generator"]).profile == "generator"
    with pytest.raises(SystemExit):
        parse_args(["--profile", "gateway"])


def test_the_table_sets_the_generators_cpu_per_call_beside_the_do_nothing_services():
    runs = []
    for noop_ms, generator_ms in ((0.4, 1.2), (0.5, 1.5), (0.6, 1.1)):
        one = dict(
            client_run(1400, 0.2, 200), cpu_ms_per_call={"service": noop_ms, "rabbitmq": 0.3}
        )
        single = dict(client_run(600, 0.1, 200), cpu_ms_per_call={"service": generator_ms})
        runs.append(summarise_ingest(one, client_run(1400, 0.1, 200), single, client_run(90, 0, 8)))
    rows = table_rows(dict(RESULTS, ingest={"runs": runs}))
    assert rows["CPU per call, do-nothing service (do-nothing)"] == ["0.50 ms"]
    assert rows["CPU per call, rabbitmq (do-nothing)"] == ["0.30 ms"]
    assert rows["CPU per call, generator (create_order)"] == ["1.20 ms"]
    assert rows["CPU per call, mariadb (create_order)"] == ["-"]


def tables_side(creates, processed, confirm, reads, pruning=None):
    side = {
        "rows": 0,
        "fill_seconds": 1.0,
        "creates": {
            "creates_per_second": creates,
            "processed_per_second": processed,
            "orders_deleted_per_second": 0.0,
            "results_deleted_per_second": 0.0,
        },
        "confirm_calls_per_second": confirm,
        "reads": {"requests_per_second": reads, "p99_ms": 20.0},
    }
    if pruning is not None:
        side["creates_while_pruning"] = pruning
    return side


def test_the_tables_run_is_planned_with_its_row_count_and_printed_as_ratios():
    args = parse_args(["--scenarios", "tables", "--table-rows", "3000000"])
    assert args.table_rows == 3_000_000
    (title,) = [title for _, title, _ in plan(args, "/logs")]
    assert "3,000,000 rows" in title
    pruning = {
        "creates_per_second": 450.0,
        "processed_per_second": 400.0,
        "orders_deleted_per_second": 2000.0,
        "results_deleted_per_second": 1500.0,
    }
    run = {
        "rows": 3_000_000,
        "seconds": 10.0,
        "empty": tables_side(600.0, 600.0, 100.0, 800.0),
        "full": tables_side(500.0, 500.0, 80.0, 400.0, pruning),
    }
    ratios = table_size.ratios(run)
    assert ratios["creates"] == pytest.approx(500 / 600)
    assert ratios["confirm"] == pytest.approx(0.8)
    assert ratios["reads"] == pytest.approx(0.5)
    assert ratios["creates_while_pruning"] == pytest.approx(0.9)
    assert ratios["processed_while_pruning"] == pytest.approx(0.8)
    printed = table_size.table([run])
    assert "0.83x" in printed and "deleted 2000 orders/s" in printed
    # Nothing processed in the window without pruning: no ratio to show.
    run["full"]["creates"]["processed_per_second"] = 0.0
    assert table_size.ratios(run)["processed_while_pruning"] is None
    assert "processed 400 vs 0 /s (-)" in table_size.table([run])


def test_the_empty_side_is_the_mean_of_its_runs_before_and_after_the_full_one():
    before = tables_side(600.0, 600.0, 100.0, 800.0)
    after = tables_side(400.0, 400.0, 60.0, 400.0)
    empty = table_size.mean_of(before, after)
    assert empty["creates"]["creates_per_second"] == 500.0
    assert empty["confirm_calls_per_second"] == 80.0
    assert empty["reads"] == {"requests_per_second": 600.0, "p99_ms": 20.0}
    pruning = dict(before["creates"])
    full = tables_side(500.0, 500.0, 80.0, 300.0, pruning)
    run = {"rows": 10, "seconds": 1.0, "empty": empty, "empty_runs": [before, after], "full": full}
    assert table_size.ratios(run)["reads"] == 0.5
    assert "create_order 600 / 400 /s, get_orders 100 / 60 /s, GET 800 / 400 /s" in (
        table_size.table([run])
    )


def test_the_peak_run_and_the_cpu_of_every_process_have_targets_of_their_own():
    cpu = {
        "order_generator": 0.25,
        "order_processor#1": 0.125,
        "rabbitmq": 0.0625,
        "mariadb": 0.0625,
    }
    results = dict(
        RESULTS,
        sustained={"runs": [{"cpu_ms_per_order": cpu, "latency": {"p50_ms": 40, "p99_ms": 120}}]},
        sustained_peak={
            "runs": [
                {
                    "offered_orders_per_second": 3000,
                    "processed_orders_per_second": 2500,
                    "backlog_grew": True,
                }
            ]
        },
    )
    figs = figures(results)
    assert figs["sustained_all_cpu_ms_per_order"] == pytest.approx(0.5)
    checks = {check["figure"]: check["met"] for check in target_checks(figs)}
    assert checks["sustained: CPU per order processed, every process"] is True
    assert checks["sustained: created -> processed p99"] is True
    assert checks["peak: offered"] is True
    assert checks["peak: processed / offered"] is False
    assert checks["peak: backlog"] is False

"""The benchmark's TLS profile (`python -m bench --tls`): the two sets of
servers take turns, and the table puts their medians side by side with the
ratio. The runs themselves are replaced here; `make bench TLS=1` runs them."""

import re
from types import SimpleNamespace

from bench import tls
from bench.cli import parse_args


def test_clear_and_tls_take_turns_on_their_own_servers(monkeypatch):
    made = []
    monkeypatch.setattr(tls, "run_drain", lambda *a, servers: made.append(("drain", servers)))
    monkeypatch.setattr(tls, "run_latency", lambda *a, servers: made.append(("latency", servers)))
    args = SimpleNamespace(
        repeat=2, orders=10, latency_rate=5, latency_seconds=1, latency_source="inprocess"
    )
    places = {"plain": "clear servers", "tls": "tls servers"}
    done = [(place, scenario) for place, scenario, _ in tls.runs(args, "logs", places)]
    assert (
        done == [("plain", "drain"), ("plain", "latency"), ("tls", "drain"), ("tls", "latency")] * 2
    )
    assert [servers for _, servers in made] == [places[place] for place, _ in done]


def test_the_table_shows_each_figure_in_clear_and_over_tls_with_their_ratio():
    def drain(rate):
        return {"orders_per_second": rate}

    def latency(p50):
        return {
            "created_orders_per_second": 100,
            "latency": {"p50_ms": p50, "p95_ms": p50 * 2, "p99_ms": p50 * 3},
        }

    results = {
        "sizes": {
            "orders": 100,
            "latency_rate": 100,
            "latency_seconds": 3,
            "latency_source": "inprocess",
            "repeat": 1,
        },
        "machine": {"cpus": 2, "load_before": [1, 1, 1], "load_after": [2, 2, 2]},
        "errors": {"tls latency": "RuntimeError: boom"},
        "figures": {
            "plain": tls.figures({"drain": [drain(4000)], "latency": [latency(10)]}),
            "tls": tls.figures({"drain": [drain(3000)], "latency": []}),
        },
    }
    rows = {}
    for line in tls.table(results).splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    assert rows["drain, 1 processor"] == ["4000 orders/s", "3000 orders/s", "0.75 x"]
    assert rows["latency p50"] == ["10.0 ms", "-", "-"]
    assert "FAILED tls latency: RuntimeError: boom" in rows


def test_the_tls_profile_writes_its_own_results_file():
    assert parse_args(["--tls"]).output.endswith("bench-results/tls.json")

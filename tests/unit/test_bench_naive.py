"""The naive nameko pipeline scenario (`--scenarios naive`): its two drains
take turns, the ratio is each run's own, and the table shows both rates
with the ratio against its target. The drains themselves are replaced here;
`make bench-smoke` runs them."""

import re

import pytest

from bench import naive
from bench.cli import parse_args, plan
from bench.report import figures, table, target_checks
from tests.unit.test_bench import RESULTS as BENCH_RESULTS


def test_the_two_drains_take_turns_and_the_ratio_is_the_processors_over_the_naive(monkeypatch):
    made = []

    def run_drain(log_dir, orders, processors, drained=None):
        made.append((log_dir, orders, processors, drained))
        return {"orders_per_second": 100.0 if drained is naive.NAIVE else 2500.0}

    monkeypatch.setattr(naive, "run_drain", run_drain)
    first = naive.run_naive_comparison("logs", 50)
    second = naive.run_naive_comparison("logs", 50, naive_first=False)
    assert [drained for *_, drained in made] == [naive.NAIVE, None, None, naive.NAIVE]
    assert {(log_dir, orders, processors) for log_dir, orders, processors, _ in made} == {
        ("logs/naive", 50, 1),
        ("logs/pipeline", 50, 1),
    }
    assert (first["first"], second["first"]) == ("naive", "pipeline")
    assert first["ratio"] == second["ratio"] == 25.0
    assert first["naive"] == {"orders_per_second": 100.0}


def test_the_plan_alternates_which_goes_first_and_the_smoke_is_small():
    titles = [
        title
        for scenario, title, _ in plan(parse_args(["--scenarios", "naive", "--repeat", "3"]), "/l")
    ]
    assert [title.split(",")[0] for title in titles] == [
        "drain through the naive nameko pipeline",
        "drain through this project's processor",
        "drain through the naive nameko pipeline",
    ]
    assert all(title.endswith("10000 orders") for title in titles)
    (run,) = [run for _, _, run in plan(parse_args(["--smoke", "--scenarios", "naive"]), "/l")]
    assert run.args == ("/l/naive-1", 200) and run.keywords == {"naive_first": True}
    assert "naive" in parse_args([]).scenarios


def comparison(naive_rate, pipeline_rate, naive_cpu=4.0):
    return {
        "orders": 100,
        "naive": {
            "orders_per_second": naive_rate,
            "cpu_ms_per_order": {"naive_processor#1": naive_cpu, "naive_generator": 3.0},
        },
        "pipeline": {
            "orders_per_second": pipeline_rate,
            "cpu_ms_per_order": {"order_processor#1": 0.2, "order_generator": 0.05},
        },
        "ratio": pipeline_rate / naive_rate,
    }


RESULTS = {
    "sizes": BENCH_RESULTS["sizes"],
    "machine": BENCH_RESULTS["machine"],
    # Ratios 30, 15 and 10: their median (15) is not the ratio of the
    # median rates (3000 / 150 = 20).
    "naive": {
        "runs": [
            comparison(100, 3000, naive_cpu=5.0),
            comparison(200, 3000, naive_cpu=3.0),
            comparison(150, 1500),
        ]
    },
}


def test_the_ratio_is_the_median_of_each_runs_own():
    figs = figures(RESULTS)
    assert figs["naive_naive_orders_per_second"] == 150
    assert figs["naive_pipeline_orders_per_second"] == 3000
    assert figs["naive_ratio"] == pytest.approx(15)
    assert figs["naive_naive_naive_processor_cpu_ms_per_order"] == 4.0
    assert figs["naive_pipeline_order_generator_cpu_ms_per_order"] == 0.05
    # Each run's naive CPU per order (8, 6, 7 ms) over the project's (0.25 ms).
    assert figs["naive_cpu_ratio"] == pytest.approx(28)
    (check,) = [c for c in target_checks(figs) if c["figure"].endswith("naive nameko pipeline")]
    assert check["target"] == ">= 20" and check["met"] is False


def test_the_table_shows_both_rates_and_the_ratio_against_its_target():
    rows = {}
    for line in table(RESULTS, figures(RESULTS)).splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    assert rows["naive nameko pipeline, 1 processor"] == ["150 orders/s"]
    assert rows["drain, 1 processor, beside it"] == ["3000 orders/s"]
    assert rows["drain, 1 processor / naive nameko pipeline"] == ["15.0 x", ">= 20 x", "NO"]
    assert rows["CPU per order, naive_processor (naive comparison)"] == ["4.00 ms"]
    assert rows["CPU per order, naive / this project (processor + generator)"] == ["28.0 x"]
    without = table({**RESULTS, "naive": {"runs": []}}, figures({**RESULTS, "naive": {}}))
    assert re.search(r"drain, 1 processor / naive nameko pipeline\s+-\s+>= 20 x\n", without)


def test_a_drain_too_short_to_sample_gives_no_cpu_ratio():
    run = comparison(100, 3000)
    run["pipeline"]["cpu_ms_per_order"] = {}
    figs = figures({**RESULTS, "naive": {"runs": [run]}})
    assert figs["naive_cpu_ratio"] is None
    assert figs["naive_ratio"] == pytest.approx(30)

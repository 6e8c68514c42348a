"""Each nemesis while orders flow from the timer, create_orders and
POST /orders; after the heal and the drain, the checker's verdict must be
valid: nothing acknowledged lost, nothing doubled, nothing processed that
was not created, nothing left behind.

`make test` runs each nemesis once for PARTITION_SECONDS (20 s);
`make partitions` runs the full matrix (PARTITION_RUNS=5, 120 s each) and
writes its table into docs/guarantees.md. PARTITION_NEMESES (comma
separated) picks some."""

import os
import time

import pytest

from tests.partitions import results
from tests.partitions.nemeses import NEMESES

RUNS = int(os.environ.get("PARTITION_RUNS", "1"))
SECONDS = float(os.environ.get("PARTITION_SECONDS", "20"))
SELECTED = [name for name in os.environ.get("PARTITION_NEMESES", "").split(",") if name] or list(
    NEMESES
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="network namespaces and nftables need root (CI runs as root)"
)


@pytest.mark.parametrize("run", range(1, RUNS + 1), ids=lambda run: f"run{run}")
@pytest.mark.parametrize("nemesis", SELECTED)
def test_nothing_acknowledged_is_lost_or_doubled(system, nemesis, run):
    started = time.monotonic()
    verdict = system.run(nemesis, SECONDS)
    results.record(verdict, time.monotonic() - started, SECONDS, system.notes)
    assert verdict.valid, verdict.problems

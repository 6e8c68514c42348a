"""The cluster scenarios' table: the fault suite's columns (tests/faults/
figures.py) plus how long the pipeline took to go on working while a node
was still down, printed at the end of the run (conftest.py)."""

from dataclasses import dataclass

from tests.faults.figures import COLUMNS, Figures, format_table

CLUSTER_COLUMNS = (*COLUMNS, "failover s")


@dataclass(frozen=True)
class ClusterFigures:
    figures: Figures
    # From the fault's start until orders committed after it were processed,
    # with the node still down or frozen (None: not measured).
    failover_seconds: float | None

    def cells(self):
        failover = "-" if self.failover_seconds is None else f"{self.failover_seconds:.1f}"
        return (*self.figures.cells(), failover)


RECORDED = []


def record(figures, failover_seconds):
    row = ClusterFigures(figures, failover_seconds)
    RECORDED.append(row)
    print("\n" + format_table([row], CLUSTER_COLUMNS))


def table():
    return format_table(RECORDED, CLUSTER_COLUMNS)

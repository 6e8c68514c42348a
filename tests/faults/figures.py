"""The table each fault scenario adds a row to, printed at the end of the run
(tests/faults/conftest.py) so it shows in plain `pytest` output."""

from dataclasses import dataclass

COLUMNS = ("scenario", "committed", "processed", "lost", "duplicated", "recovery s")


@dataclass(frozen=True)
class Figures:
    scenario: str
    committed: int
    processed: int
    lost: int
    duplicated: int
    # From the end of the fault until every order committed by then was
    # processed.
    recovery_seconds: float

    def cells(self):
        return (
            self.scenario,
            str(self.committed),
            str(self.processed),
            str(self.lost),
            str(self.duplicated),
            f"{self.recovery_seconds:.1f}",
        )


RECORDED = []


def record(figures):
    RECORDED.append(figures)
    print("\n" + format_table([figures]))


def format_table(rows):
    lines = [COLUMNS] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]

    def render(line):
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        )

    rendered = [render(line) for line in lines]
    rendered.insert(1, "-" * len(rendered[0]))
    return "\n".join(rendered)

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


ATTACK_COLUMNS = (
    "attack",
    "connections",
    "503/refused",
    "longest wait s",
    "errors",
    "normal after s",
)


@dataclass(frozen=True)
class AttackFigures:
    """One hostile-load scenario against the gateway (test_hostile_load)."""

    attack: str
    connections: int  # opened, or tried, by the attacker
    turned_away: int  # attacker connections answered 503 or refused
    # The longest a well-behaved GET /health or /metrics waited during it.
    longest_wait_seconds: float
    # Well-behaved requests that got no JSON 200, and answers that were not JSON.
    errors: int
    # From the end of the attack until /health and /metrics answer 200.
    normal_after_seconds: float

    def cells(self):
        return (
            self.attack,
            str(self.connections),
            str(self.turned_away),
            f"{self.longest_wait_seconds:.2f}",
            str(self.errors),
            f"{self.normal_after_seconds:.2f}",
        )


RECORDED = []
RECORDED_ATTACKS = []


def record(figures, recorded=None):
    (RECORDED if recorded is None else recorded).append(figures)
    print("\n" + format_table([figures]))


def record_attack(figures):
    RECORDED_ATTACKS.append(figures)
    print("\n" + format_table([figures], ATTACK_COLUMNS))


def format_table(rows, columns=COLUMNS):
    lines = [columns] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]

    def render(line):
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        )

    rendered = [render(line) for line in lines]
    rendered.insert(1, "-" * len(rendered[0]))
    return "\n".join(rendered)

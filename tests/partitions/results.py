"""The verdicts of a run of the suite: printed as a table at its end, and
with PARTITION_RESULTS set, appended to that file (JSON lines), from which
`python -m tests.partitions.results FILE` writes the matrix's table into
docs/guarantees.md (what `make partitions` does)."""

import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime

RECORDED = []
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "guarantees.md")
BEGIN = "<!-- partitions table: begin (written by `make partitions`) -->"
END = "<!-- partitions table: end -->"
COLUMNS = (
    "nemesis",
    "runs",
    "valid",
    "fault s",
    "attempted",
    "acked",
    "lost",
    "duplicated",
    "unknown (present)",
    "heal->processed s",
    "failover s",
    "no line",
    "node restarted by hand",
)


def record(verdict, seconds, fault_seconds, notes=()):
    """`notes`: what the run said along the way (the nodes it picked, an
    operator's restart)."""
    row = {
        **asdict(verdict),
        "valid": verdict.valid,
        "seconds": round(seconds, 1),
        "fault_seconds": fault_seconds,
        "notes": list(notes),
    }
    RECORDED.append(row)
    path = os.environ.get("PARTITION_RESULTS")
    if path:
        with open(path, "a") as results:
            results.write(json.dumps(row) + "\n")


def _span(values):
    values = [value for value in values if value is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{min(values):.1f}-{max(values):.1f} (median {statistics.median(values):.1f})"


def table(rows):
    """One line per nemesis, its runs summed (times: range and median)."""
    by_nemesis = {}
    for row in rows:
        by_nemesis.setdefault(row["nemesis"], []).append(row)
    lines = [COLUMNS]
    for nemesis, runs in by_nemesis.items():

        def total(key, runs=runs):
            return sum(run[key] for run in runs)

        lines.append(
            (
                nemesis,
                str(len(runs)),
                str(sum(run["valid"] for run in runs)),
                _span([run["fault_seconds"] for run in runs]),
                str(total("attempted")),
                str(total("acked")),
                str(total("lost")),
                str(total("duplicated")),
                f"{total('unknown')} ({total('unknown_present')})",
                _span([run["heal_to_first_processed"] for run in runs]),
                _span([run["failover_seconds"] for run in runs]),
                str(total("unlogged")),
                str(sum(any("restarting" in note for note in run["notes"]) for run in runs)),
            )
        )
    return "\n".join(
        "| " + " | ".join(cells) + " |" + ("\n|" + " --- |" * len(COLUMNS) if i == 0 else "")
        for i, cells in enumerate(lines)
    )


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        f"{os.cpu_count()} vCPUs ({cpu}), {platform.system()} {platform.release()}, commit {commit}"
    )


def write_docs(results_path, docs_path=DOCS):
    with open(results_path) as results:
        rows = [json.loads(line) for line in results if line.strip()]
    if not rows:
        raise SystemExit("no run recorded a verdict: docs/guarantees.md left as it is")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{BEGIN}\nFrom `make partitions` on {when}, {machine()}:\n\n{table(rows)}\n{END}"
    with open(docs_path) as docs:
        text = docs.read()
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(docs_path, "w") as docs:
        docs.write(text)


if __name__ == "__main__":
    write_docs(sys.argv[1])

"""A retention pass: a service's old rows deleted a small batch per
transaction, oldest first, for up to PASS_SECONDS.

What is old, what may go and how it goes are the service's (its store and
its retention module); this is the loop they share. The scan follows an
index on (moment, id) from where the last batch stopped, so a batch reads
its own rows and no more, however large the table. After each batch the
pass pauses for PAUSE_SHARE of the time the batch took, so that pruning
takes at most half of the process and of its share of the database while
it has a backlog; under eventlet that pause is also where the service's
other work (creates, confirmations, events) runs.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from order_pipeline.transactions import run_transaction

# A pass stops after this long, whatever is left (the next pass goes on), so
# a stopping service waits at most that long for it.
PASS_SECONDS = 10.0
PAUSE_SHARE = 1.0
# The start of a scan in (moment, id) order: before any row.
SCAN_START = ("1000-01-01", 0)


@dataclass
class PassReport:
    batches: int = 0
    deleted: int = 0
    kept: int = 0  # old enough, but not to go (yet)
    # Why the pass ended early: the service asked did not answer (the next
    # pass starts again from the oldest row).
    unanswered: str | None = None


def prune(
    db,
    retention,
    old_rows,
    choose,
    delete,
    now,
    name,
    unanswered=(),
    stop_when_none_deleted=False,
    pass_seconds=PASS_SECONDS,
):
    """Run one pass; returns a PassReport.

    `old_rows(session, cutoff, after, limit)` gives up to `limit` (moment,
    id) rows older than `cutoff`, in that order, after `after`;
    `choose(ids)` those of `ids` that may go (it may ask another service:
    an exception in `unanswered` ends the pass); `delete(session, ids,
    cutoff)` deletes them in one transaction and says how many went. With
    `stop_when_none_deleted`, a batch that deletes nothing ends the pass
    (the rows after it are younger, and would not go either)."""
    cutoff = now - timedelta(days=retention.days)
    report = PassReport()
    after = SCAN_START
    deadline = time.monotonic() + pass_seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        with db.get_session() as session:
            batch = old_rows(session, cutoff, after, retention.batch_size)
        if not batch:
            break
        after = tuple(batch[-1])
        ids = [row[1] for row in batch]
        try:
            chosen = sorted(set(choose(ids)) & set(ids))
        except unanswered as exc:
            report.unanswered = str(exc)
            break
        deleted = run_transaction(
            db,
            lambda session, chosen=chosen: delete(session, chosen, cutoff),
            name=name,
            retry_unknown_commit=True,
        )
        report.batches += 1
        report.deleted += deleted
        report.kept += len(ids) - deleted
        if stop_when_none_deleted and not deleted:
            break
        time.sleep((time.monotonic() - started) * PAUSE_SHARE)
    return report


def log_pass(log, report, rows, kept_because):
    """One line for a pass that did something, a warning for one cut short."""
    if report.unanswered:
        log.warning("retention: the pass stopped: %s", report.unanswered)
    if report.deleted or report.kept:
        log.info(
            "retention: %d %s deleted in %d batch(es); %d old one(s) kept (%s)",
            report.deleted,
            rows,
            report.batches,
            report.kept,
            kept_because,
        )

"""Retention: results deleted RESULT_RETENTION_DAYS after processing, a
small batch per transaction, as plain functions.

A result goes only once its order is gone from the generator (asked over
RPC, `order_generator.get_orders`, the confirmation call): while an order
exists its result stays, so `GET /orders/<id>` never shows a processed
order as unprocessed, and the generator, which deletes an order only once
the processor has its result, always finds it. The generator deletes first
(ORDER_RETENTION_DAYS), the processor after; with the generator's retention
off, results are kept.

What a batch deletes is added to `pruned_results` in the same transaction;
the running totals (`processing_totals`, what /metrics reads) are left as
they are.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable
from order_pipeline.times import utc_now
from order_pipeline.transactions import run_transaction
from processor_service import store

# A pass stops after this long, whatever is left (the next pass goes on), so
# a stopping service waits at most that long for it.
PASS_SECONDS = 10.0
# After each batch a pass pauses for this share of the time the batch took,
# leaving the process and the database to the other work: pruning takes
# at most half of the time while it has a backlog.
PAUSE_SHARE = 1.0


@dataclass
class PassReport:
    batches: int = 0
    deleted: int = 0
    # Why the pass ended early: the other service did not answer (the next
    # pass goes on from the start).
    unanswered: str | None = None
    kept: int = 0  # old enough, but their orders still exist


def prune_results(db, existing_ids, retention, now=None, pass_seconds=PASS_SECONDS):
    """Delete results older than `retention.days` whose orders are gone, at
    most `retention.batch_size` per transaction, oldest first, for up to
    `pass_seconds`, or until a batch deletes nothing. `existing_ids(ids)`
    gives those of `ids` the generator still has. Returns a PassReport."""
    cutoff = (now or utc_now()) - timedelta(days=retention.days)
    report = PassReport()
    after = store.SCAN_START
    deadline = time.monotonic() + pass_seconds
    while time.monotonic() < deadline:
        batch_started = time.monotonic()
        with db.get_session() as session:
            batch = store.old_results(session, cutoff, after, retention.batch_size)
        if not batch:
            break
        after = (batch[-1].processed_at, batch[-1].order_id)
        ids = [row.order_id for row in batch]
        try:
            gone = sorted(set(ids) - set(existing_ids(ids)))
        except (RpcTimeout, ServiceUnavailable) as exc:
            report.unanswered = str(exc)
            break
        deleted = run_transaction(
            db,
            lambda session, gone=gone: store.delete_results(session, gone, cutoff),
            name="deleting old results",
            retry_unknown_commit=True,
        )
        report.batches += 1
        report.deleted += deleted
        report.kept += len(ids) - deleted
        if not deleted:
            # Every order of the batch still exists: the generator's
            # retention has not reached these yet (or keeps orders longer),
            # and the next batches are younger still.
            break
        # Under eventlet this yields: the event handler runs meanwhile.
        time.sleep((time.monotonic() - batch_started) * PAUSE_SHARE)
    return report

"""Retention: processed orders deleted ORDER_RETENTION_DAYS after their
creation, a small batch per transaction, as plain functions.

An order goes only when all of these hold, checked in the DELETE itself
(the last one just before it):

- it was created before the cutoff;
- it has no outbox row: its OrderCreated was confirmed and routed by the
  broker (an outbox row would also go with it, by its foreign key);
- no idempotency key names it (a retry with that key would otherwise
  create the order again; keys expire after IDEMPOTENCY_WINDOW);
- the processor has its result. The confirmation RPC (`get_orders`) records
  nothing, and could not tell: it comes before the result is stored, which
  may then fail and end as a dead letter. So each batch asks the processor,
  which owns the results, over RPC (`order_processor.processed_order_ids`); an
  order without a result is kept, however old.

`orders_created` (the count shards) is a running total: deleting orders
leaves it as it was.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from generator_service import store
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable
from order_pipeline.times import utc_now
from order_pipeline.transactions import run_transaction

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
    kept: int = 0  # old enough, but with no result, or changed meanwhile


def prune_orders(db, processed_ids, retention, now=None, pass_seconds=PASS_SECONDS):
    """Delete processed orders older than `retention.days`, at most
    `retention.batch_size` per transaction, oldest first, for up to
    `pass_seconds`. `processed_ids(ids)` gives those of `ids` that the
    processor has a result for. Returns a PassReport."""
    cutoff = (now or utc_now()) - timedelta(days=retention.days)
    report = PassReport()
    after = store.SCAN_START
    deadline = time.monotonic() + pass_seconds
    while time.monotonic() < deadline:
        batch_started = time.monotonic()
        with db.get_session() as session:
            batch = store.old_orders(session, cutoff, after, retention.batch_size)
        if not batch:
            break
        after = (batch[-1].created_at, batch[-1].id)
        ids = [row.id for row in batch]
        try:
            processed = sorted(set(processed_ids(ids)) & set(ids))
        except (RpcTimeout, ServiceUnavailable) as exc:
            report.unanswered = str(exc)
            break
        deleted = run_transaction(
            db,
            lambda session, processed=processed: store.delete_orders(session, processed, cutoff),
            name="deleting old orders",
            retry_unknown_commit=True,
        )
        report.batches += 1
        report.deleted += deleted
        report.kept += len(ids) - deleted
        # Under eventlet this yields: creates and confirmations run meanwhile.
        time.sleep((time.monotonic() - batch_started) * PAUSE_SHARE)
    return report

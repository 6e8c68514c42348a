"""Retention: results deleted RESULT_RETENTION_DAYS after processing, a
small batch per transaction (order_pipeline.retention's pass).

A result goes only once its order is gone from the generator (asked over
RPC, `order_generator.get_orders`, the confirmation call): while an order
exists its result stays, so `GET /orders/<id>` never shows a processed
order as unprocessed, and the generator, which deletes an order only once
the processor has its result, always finds it. The generator deletes first
(ORDER_RETENTION_DAYS), the processor after; with the generator's retention
off, results are kept. A batch whose orders all still exist ends the pass:
the generator has not got that far.

What a batch deletes is added to `pruned_results` in the same transaction;
the running totals (`processing_totals`, what /metrics reads) are left as
they are.
"""

from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable
from order_pipeline.retention import PASS_SECONDS, prune
from order_pipeline.times import utc_now
from processor_service import store


def prune_results(db, existing_ids, retention, now=None, pass_seconds=PASS_SECONDS):
    """Delete results older than `retention.days` whose orders are gone,
    oldest first. `existing_ids(ids)` gives those of `ids` the generator
    still has. Returns an order_pipeline.retention.PassReport."""
    return prune(
        db,
        retention,
        store.old_results,
        lambda ids: set(ids) - set(existing_ids(ids)),
        store.delete_results,
        now=now or utc_now(),
        name="deleting old results",
        unanswered=(RpcTimeout, ServiceUnavailable),
        stop_when_none_deleted=True,
        pass_seconds=pass_seconds,
    )

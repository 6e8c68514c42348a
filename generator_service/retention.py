"""Retention: processed orders deleted ORDER_RETENTION_DAYS after their
creation, a small batch per transaction (order_pipeline.retention's pass).

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
  which owns the results, over RPC (`order_processor.processed_order_ids`);
  an order without a result is kept, however old.

`orders_created` (the count shards) is a running total: deleting orders
leaves it as it was.
"""

from generator_service import store
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable
from order_pipeline.retention import PASS_SECONDS, prune
from order_pipeline.times import utc_now


def prune_orders(db, processed_ids, retention, now=None, pass_seconds=PASS_SECONDS):
    """Delete processed orders older than `retention.days`, oldest first.
    `processed_ids(ids)` gives those of `ids` that the processor has a
    result for. Returns an order_pipeline.retention.PassReport."""
    return prune(
        db,
        retention,
        store.old_orders,
        processed_ids,
        store.delete_orders,
        now=now or utc_now(),
        name="deleting old orders",
        unanswered=(RpcTimeout, ServiceUnavailable),
        pass_seconds=pass_seconds,
    )

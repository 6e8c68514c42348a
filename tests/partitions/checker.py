"""The checker: what a run's history and the system's final state say,
after the links are healed and the backlog drained.

Pure functions over plain data (the unit test feeds it by hand:
tests/unit/test_partition_checker.py). The rules, after the issue:

- every acknowledged order exists once in `orders` and is processed exactly
  once (one `order_process` row, one execution line, counted once);
- no order is processed that was never created;
- an operation whose outcome was unknown is present whole or absent, never
  twice (counted apart: `unknown`, `unknown_present`); a refused one absent;
- every order in the table (the timer's too) is processed exactly once
  (an order stored without its execution line is counted apart: `unlogged`);
- /metrics equals SQL, no dead letter is left unexplained, every queue and
  the outbox are empty.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.partitions.history import ACK, FIRST_QUANTITY, REFUSED, UNKNOWN


@dataclass
class Observed:
    """The system's state after the drain."""

    orders: dict  # order id -> quantity, every row of `orders`
    processed: Counter  # order id -> `order_process` rows
    executions: Counter  # order id -> execution lines in the processors' logs
    totals_count: int  # orders counted in processing_totals
    metrics_equal_sql: bool
    dead_letters: list = field(default_factory=list)  # (order id or None, cause)
    queue_depths: dict = field(default_factory=dict)  # queue -> messages left
    outbox: int = 0


@dataclass
class Verdict:
    nemesis: str
    attempted: int = 0
    acked: int = 0
    refused: int = 0
    unknown: int = 0
    unknown_present: int = 0
    lost: int = 0
    duplicated: int = 0
    orphans: int = 0
    orders: int = 0
    unlogged: int = 0  # processed once, without an execution line
    heal_to_first_processed: float | None = None
    failover_seconds: float | None = None
    problems: list = field(default_factory=list)

    @property
    def valid(self):
        return not self.problems


def check(nemesis, ops, observed, heal_to_first_processed=None, failover_seconds=None):
    verdict = Verdict(
        nemesis,
        orders=len(observed.orders),
        heal_to_first_processed=heal_to_first_processed,
        failover_seconds=failover_seconds,
    )
    problems = verdict.problems
    by_quantity = defaultdict(list)
    for order_id, quantity in observed.orders.items():
        if quantity >= FIRST_QUANTITY:
            by_quantity[quantity].append(order_id)
    seen_quantities = set()
    for op in ops:
        rows = by_quantity.get(op.quantity, [])
        seen_quantities.add(op.quantity)
        verdict.attempted += op.count
        if len(rows) > op.count:
            verdict.duplicated += len(rows) - op.count
            problems.append(
                f"op {op.index} ({op.outcome}) created {len(rows)} orders, not {op.count}"
            )
        if op.outcome == ACK:
            verdict.acked += op.count
            missing = [order_id for order_id in op.ids if order_id not in observed.orders]
            if missing:
                verdict.lost += len(missing)
                problems.append(f"op {op.index}: acknowledged orders {missing} not in `orders`")
            if sorted(op.ids) != sorted(rows) and not missing and len(rows) <= op.count:
                problems.append(f"op {op.index}: acknowledged {op.ids}, stored {rows}")
        elif op.outcome == UNKNOWN:
            verdict.unknown += op.count
            if len(rows) == op.count:
                verdict.unknown_present += op.count
            elif 0 < len(rows) < op.count:
                problems.append(f"op {op.index}: {len(rows)} of its {op.count} orders stored")
        elif op.outcome == REFUSED:
            verdict.refused += op.count
            if rows:
                problems.append(f"op {op.index} was refused, yet its orders {rows} exist")
    strangers = sorted(set(by_quantity) - seen_quantities)
    if strangers:
        problems.append(f"orders of no recorded operation (quantities {strangers[:5]})")

    unprocessed = [order_id for order_id in observed.orders if observed.processed[order_id] == 0]
    if unprocessed:
        verdict.lost += len(unprocessed)
        problems.append(f"{len(unprocessed)} order(s) never processed: {sorted(unprocessed)[:10]}")
    orphans = sorted(order_id for order_id in observed.processed if order_id not in observed.orders)
    if orphans:
        verdict.orphans = len(orphans)
        problems.append(f"processed without being created: {orphans[:10]}")
    twice = {
        order_id: count
        for counts in (observed.processed, observed.executions)
        for order_id, count in counts.items()
        if count > 1
    }
    counted_twice = max(0, observed.totals_count - sum(observed.processed.values()))
    if twice or counted_twice:
        verdict.duplicated += sum(count - 1 for count in twice.values()) + counted_twice
        problems.append(f"processed more than once: {dict(list(twice.items())[:10])}")
        if counted_twice:
            problems.append(f"{counted_twice} order(s) counted twice in the totals")
    # Processed once, but its line never printed: counted, not a failure
    # (docs/guarantees.md, "What was found", says when it happens).
    verdict.unlogged = sum(
        1 for o in observed.processed if o in observed.orders and not observed.executions[o]
    )

    if not observed.metrics_equal_sql:
        problems.append("/metrics differs from SQL")
    if observed.dead_letters:
        causes = Counter(cause for _order_id, cause in observed.dead_letters)
        problems.append(f"dead letters: {dict(causes)}")
    left = {queue: depth for queue, depth in observed.queue_depths.items() if depth}
    if left:
        problems.append(f"messages left in queues: {left}")
    if observed.outbox:
        problems.append(f"{observed.outbox} event(s) left in the outbox")
    return verdict

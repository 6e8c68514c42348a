"""The partition suite's checker (tests/partitions/checker.py) catches what
it is there to catch: a lost order, a duplicate, an order processed without
its creation, and tells an unknown outcome apart."""

from collections import Counter

from tests.partitions.checker import Observed, check
from tests.partitions.history import ACK, REFUSED, UNKNOWN, Op


def op(index, outcome, ids=(), count=2):
    return Op(index, "rpc", count, outcome=outcome, ids=list(ids))


def healthy(orders):
    """The state of a run in which every order in `orders` was processed once."""
    once = Counter(dict.fromkeys(orders, 1))
    return Observed(
        orders=dict(orders),
        processed=once,
        executions=Counter(once),
        totals_count=len(orders),
        metrics_equal_sql=True,
    )


# A timer order (quantity 7), op 0 acknowledged as orders 2 and 3, op 1 unknown
# and stored (4, 5), op 2 unknown and absent, op 3 refused.
ORDERS = {1: 7, 2: 1000, 3: 1000, 4: 1001, 5: 1001}
OPS = [op(0, ACK, [2, 3]), op(1, UNKNOWN), op(2, UNKNOWN), op(3, REFUSED)]


def test_a_clean_run_is_valid_with_its_unknowns_counted_apart():
    verdict = check("clean", OPS, healthy(ORDERS))
    assert verdict.valid, verdict.problems
    assert (verdict.attempted, verdict.acked, verdict.refused) == (8, 2, 2)
    assert (verdict.unknown, verdict.unknown_present) == (4, 2)
    assert (verdict.lost, verdict.duplicated, verdict.orphans) == (0, 0, 0)


def test_an_acknowledged_order_missing_from_the_table_is_lost():
    observed = healthy({k: v for k, v in ORDERS.items() if k != 3})
    verdict = check("lost", OPS, observed)
    assert not verdict.valid
    assert verdict.lost == 1


def test_an_acknowledged_order_never_processed_is_lost():
    observed = healthy(ORDERS)
    del observed.processed[2], observed.executions[2]
    observed.totals_count -= 1
    verdict = check("unprocessed", OPS, observed)
    assert not verdict.valid
    assert verdict.lost == 1


def test_an_order_processed_twice_is_a_duplicate():
    observed = healthy(ORDERS)
    observed.executions[3] += 1
    verdict = check("twice", OPS, observed)
    assert not verdict.valid
    assert verdict.duplicated == 1


def test_an_operation_that_ran_twice_is_a_duplicate():
    observed = healthy({**ORDERS, 6: 1000, 7: 1000})
    verdict = check("ran twice", OPS, observed)
    assert not verdict.valid
    assert verdict.duplicated == 2


def test_an_order_processed_without_its_creation_is_caught():
    observed = healthy(ORDERS)
    observed.processed[99] = 1
    observed.executions[99] = 1
    observed.totals_count += 1
    verdict = check("orphan", OPS, observed)
    assert not verdict.valid
    assert verdict.orphans == 1


def test_a_refused_operation_that_was_stored_after_all_is_caught():
    observed = healthy({**ORDERS, 8: 1003, 9: 1003})
    verdict = check("refused yet stored", OPS, observed)
    assert not verdict.valid


def test_half_an_unknown_operation_is_caught():
    observed = healthy({k: v for k, v in ORDERS.items() if k != 5})
    assert not check("half", OPS, observed).valid


def test_leftovers_and_metrics_are_part_of_the_verdict():
    observed = healthy(ORDERS)
    observed.metrics_equal_sql = False
    observed.dead_letters = [(4, "OrderNotFound")]
    observed.queue_depths = {"q": 3}
    observed.outbox = 1
    problems = " ".join(check("leftovers", OPS, observed).problems)
    for expected in ("/metrics", "OrderNotFound", "queues", "outbox"):
        assert expected in problems


def test_an_order_stored_without_its_line_is_counted_apart():
    observed = healthy(ORDERS)
    del observed.executions[4]
    verdict = check("unlogged", OPS, observed)
    assert verdict.valid, verdict.problems
    assert verdict.unlogged == 1

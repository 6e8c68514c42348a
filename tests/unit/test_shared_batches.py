"""order_pipeline.extensions.shared_batches: concurrent callers share one bulk call,
each gets its own result, and a failed round fails its callers only.

The bulk function is held on an eventlet Event, so which callers join which
round is set by the test, not by how fast the machine runs them."""

import eventlet
import pytest
from eventlet.event import Event

from order_pipeline.extensions.shared_batches import SharedBatches


class Container:
    """What SharedBatches uses of a nameko container."""

    def spawn_managed_thread(self, run, identifier=None):
        return eventlet.spawn(run)


def shared_batches(max_items):
    provider = SharedBatches(max_items)
    provider.container = Container()
    provider.setup()
    return provider.get_dependency(worker_ctx=None)


class HeldBulkCall:
    """A bulk function that records each call's items and answers each item
    with (item, call number), once the test releases that call."""

    def __init__(self, fail_call=None):
        self.calls = []
        self.releases = []
        self.fail_call = fail_call

    def __call__(self, items):
        self.calls.append(list(items))
        release = Event()
        self.releases.append(release)
        release.wait()
        number = len(self.calls)
        if number == self.fail_call:
            raise ConnectionError(f"call {number} failed")
        return [(item, number) for item in items]

    def wait_for_calls(self, count):
        while len(self.calls) < count:
            eventlet.sleep(0)


def spawn_callers(submit, call, items):
    callers = []
    for item in items:
        callers.append(eventlet.spawn(submit, call, item))
        eventlet.sleep(0)  # let it join before the next one
    return callers


def test_a_lone_caller_gets_a_round_of_its_own_at_once():
    submit = shared_batches(max_items=10)
    bulk = HeldBulkCall()
    (caller,) = spawn_callers(submit, bulk, ["a"])
    bulk.wait_for_calls(1)
    bulk.releases[0].send()
    assert caller.wait() == ("a", 1)
    assert bulk.calls == [["a"]]


def test_callers_that_arrive_during_a_call_share_the_next_one_in_their_order():
    submit = shared_batches(max_items=10)
    bulk = HeldBulkCall()
    (first,) = spawn_callers(submit, bulk, ["first"])
    bulk.wait_for_calls(1)
    later = spawn_callers(submit, bulk, ["b", "c", "d", "e"])
    bulk.releases[0].send()
    bulk.wait_for_calls(2)
    bulk.releases[1].send()

    assert first.wait() == ("first", 1)
    assert [caller.wait() for caller in later] == [("b", 2), ("c", 2), ("d", 2), ("e", 2)]
    assert bulk.calls == [["first"], ["b", "c", "d", "e"]]


def test_a_round_takes_at_most_max_items():
    submit = shared_batches(max_items=2)
    bulk = HeldBulkCall()
    (first,) = spawn_callers(submit, bulk, [0])
    bulk.wait_for_calls(1)
    later = spawn_callers(submit, bulk, [1, 2, 3, 4, 5])
    for number in range(1, 5):
        bulk.wait_for_calls(number)
        bulk.releases[number - 1].send()

    assert [caller.wait() for caller in [first, *later]] == [
        (0, 1),
        (1, 2),
        (2, 2),
        (3, 3),
        (4, 3),
        (5, 4),
    ]
    assert bulk.calls == [[0], [1, 2], [3, 4], [5]]


def test_a_failed_round_fails_each_of_its_callers_and_the_next_round_still_runs():
    submit = shared_batches(max_items=10)
    bulk = HeldBulkCall(fail_call=2)
    (first,) = spawn_callers(submit, bulk, ["ok"])
    bulk.wait_for_calls(1)
    failing = spawn_callers(submit, bulk, ["x", "y"])
    bulk.releases[0].send()
    bulk.wait_for_calls(2)
    after = spawn_callers(submit, bulk, ["z"])
    bulk.releases[1].send()
    bulk.wait_for_calls(3)
    bulk.releases[2].send()

    assert first.wait() == ("ok", 1)
    for caller in failing:
        with pytest.raises(ConnectionError, match="call 2 failed"):
            caller.wait()
    assert after[0].wait() == ("z", 3)


def test_a_bulk_call_answering_the_wrong_number_of_results_fails_its_round():
    submit = shared_batches(max_items=10)

    with pytest.raises(RuntimeError, match="2 results for 1"):
        submit(lambda items: ["one", "two"], "only")


def test_rounds_start_again_after_the_queue_has_emptied():
    submit = shared_batches(max_items=10)

    assert submit(lambda items: [item * 2 for item in items], 3) == 6
    assert submit(lambda items: [item * 2 for item in items], 4) == 8

"""Concurrent callers share one call of a bulk operation.

One order per call costs a worker, a transaction and a reply per order.
`SharedBatches` lets concurrent workers each hand in one item and share one
call of a function that takes a list: while one call is in flight, the items
that arrive queue up, and the next call (starting as soon as that one ends)
takes them all, up to `max_items` a call. Each caller gets the result for
its own item. A lone caller waits for no one: its item is a round of one,
started at once. This is the group commit of a database, at the level of a
call: the more callers at once, the larger the rounds, with no timer and no
added latency when there is no contention.

The bulk function is all or nothing, so a round fails whole: every caller of
a failed round gets the round's exception. Callers therefore check their
item before handing it in (a bad one must fail alone, not a round), and
rounds fail only for what would have failed each call anyway (a database or
service that does not answer).
"""

from eventlet.event import Event
from nameko.extensions import DependencyProvider


class _Item:
    def __init__(self, value, call):
        self.value = value
        # The bulk function as the waiting worker passed it (an RPC proxy
        # method of its own, say): a round runs its first item's.
        self.call = call
        self.result = Event()


class SharedBatches(DependencyProvider):
    """`batch = SharedBatches(max_items)` injects `batch(call, item)`: the
    result for `item` of `call(items)`, which takes a list and returns one
    result per item, in order, shared with every concurrent caller. Items
    handed in with different `key`s never share a call."""

    def __init__(self, max_items: int | None):
        self.max_items = max_items  # None: a round takes every waiting item

    def setup(self):
        self._waiting = {}  # key -> [_Item], in arrival order
        self._calling = {}  # key -> items in the call in progress; a key here has a round runner

    def get_dependency(self, worker_ctx):
        return self.submit

    def submit(self, call, value, key=None):
        item = _Item(value, call)
        self._waiting.setdefault(key, []).append(item)
        if key not in self._calling:
            self._calling[key] = 0
            self.container.spawn_managed_thread(
                lambda: self._run_rounds(key), identifier="shared batches"
            )
        return item.result.wait()

    def _run_rounds(self, key):
        try:
            while self._waiting.get(key):
                waiting = self._waiting[key]
                round_items = waiting[: self.max_items]
                del waiting[: self.max_items]
                self._calling[key] = len(round_items)
                self._run_round(round_items)
        finally:
            del self._calling[key]
            self._waiting.pop(key, None)

    @staticmethod
    def _run_round(items):
        try:
            results = items[0].call([item.value for item in items])
            if len(results) != len(items):
                raise RuntimeError(f"a bulk call answered {len(results)} results for {len(items)}")
        except Exception as exc:  # every caller of the round gets it
            for item in items:
                item.result.send_exception(exc)
            return
        for item, result in zip(items, results):
            item.result.send(result)

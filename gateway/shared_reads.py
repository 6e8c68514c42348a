"""Concurrent requests for the same read share one RPC call.

Under load, a hundred clients polling /metrics would make a hundred RPC
round trips through the broker for the same sixteen-row sum. Here requests
for one key queue behind the call in progress and are all answered by the
next call, which starts as soon as that one ends. Every answer therefore
comes from a read that started after its request arrived (nothing is
cached), while the number of RPC calls stays at about one per round trip
however many clients there are.
"""

from eventlet.event import Event
from nameko.extensions import DependencyProvider


class _Round:
    def __init__(self, call):
        self.call = call  # made by a caller that waits for this round
        self.answer = Event()


class SharedReads(DependencyProvider):
    """Injects `read(key, call)`: `call()`'s result, shared with every
    concurrent caller of the same key."""

    def setup(self):
        self._next_round = {}  # key -> _Round waiting to start
        self._running = set()  # keys with a round in progress

    def get_dependency(self, worker_ctx):
        return self.read

    def read(self, key, call):
        next_round = self._next_round.get(key)
        if next_round is None:
            next_round = self._next_round[key] = _Round(call)
            if key not in self._running:
                self._running.add(key)
                self.container.spawn_managed_thread(lambda: self._run_rounds(key))
        return next_round.answer.wait()

    def _run_rounds(self, key):
        try:
            while key in self._next_round:
                current = self._next_round.pop(key)
                try:
                    current.answer.send(current.call())
                except Exception as exc:  # every waiter of the round gets it
                    current.answer.send_exception(exc)
        finally:
            self._running.discard(key)

"""Concurrent requests for the same read share one RPC call.

Under load, a hundred clients polling /metrics would make a hundred RPC
round trips through the broker for the same sixteen-row sum. Here requests
for one key queue behind the call in progress and are all answered by the
next call, which starts as soon as that one ends. Every answer therefore
comes from a read that started after its request arrived (nothing is
cached), while the number of RPC calls stays at about one per round trip
however many clients there are. The rounds are those of
`order_pipeline.extensions.shared_batches`, with one answer for every caller.
"""

from order_pipeline.extensions.shared_batches import SharedBatches


class SharedReads(SharedBatches):
    """Injects `read(key, call)`: `call()`'s result, shared with every
    concurrent caller of the same key."""

    def __init__(self):
        super().__init__(max_items=None)  # a round takes every waiting reader

    def get_dependency(self, worker_ctx):
        return self.read

    def read(self, key, call):
        return self.submit(lambda readers: [call()] * len(readers), None, key)

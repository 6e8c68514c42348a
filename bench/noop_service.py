"""A service that does nothing, the ceiling the ingest figures are read
against: what one nameko 2.14 RPC method costs on this machine, with the
same client and broker, and no database. Its `@rpc` is the services' own,
so that its queue has the type QUEUE_TYPE names, as theirs does."""

from order_pipeline.extensions.rpc import rpc

NOOP = "bench_noop"


class NoopService:
    name = NOOP

    @rpc
    def noop(self):
        return None

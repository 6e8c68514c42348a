"""The console's charts: per-second figures of the last CHART_SECONDS.

The figures come from the services' tables (orders created per second from
the generator, orders processed, latency percentiles and average execution
price per second from the processor), so a page opened now, or a gateway
just restarted, shows the whole window at once.

Reading the whole window every second would cost more the busier the
pipeline is, so the window is kept here and each read asks only for the
seconds that may still change: from SETTLE_SECONDS before the last
successful read on. (A row is stamped before its transaction commits; one
committed more than SETTLE_SECONDS after its stamp is missed until the
gateway restarts.) A read that fails is asked again from the same second,
so the window has no holes once the service answers again.
"""

from order_contract import CHART_SECONDS

SETTLE_SECONDS = 10
SOURCES = ("created", "processed")


class ChartWindow:
    def __init__(self, seconds: int = CHART_SECONDS):
        self.seconds = seconds
        self._figures = {source: {} for source in SOURCES}  # second -> figure
        self._read_from = dict.fromkeys(SOURCES)  # None: the whole window

    def since(self, source: str, now: float) -> int:
        """The first second to ask `source` for."""
        start = int(now) - self.seconds
        read_from = self._read_from[source]
        return start if read_from is None else max(start, read_from)

    def update(self, source: str, since: int, figures: dict, now: float):
        """`figures` ({second: figure}) is what `source` has from `since` on."""
        kept = self._figures[source]
        for second in [second for second in kept if second >= since]:
            del kept[second]
        kept.update(figures)
        for second in [second for second in kept if second < int(now) - self.seconds]:
            del kept[second]
        self._read_from[source] = int(now) - SETTLE_SECONDS

    def series(self, now: float) -> dict:
        """The window as arrays, one entry per second, oldest first, ending
        with the last whole second before `now`."""
        end = int(now) - 1
        seconds = range(end - self.seconds + 1, end + 1)
        created = self._figures["created"]
        processed = self._figures["processed"]
        empty = {}
        return {
            "end": end,
            "seconds": self.seconds,
            "created": [created.get(second, 0) for second in seconds],
            "processed": [processed.get(second, empty).get("processed", 0) for second in seconds],
            "latency_p50_ms": [
                processed.get(second, empty).get("latency_p50_ms") for second in seconds
            ],
            "latency_p95_ms": [
                processed.get(second, empty).get("latency_p95_ms") for second in seconds
            ],
            "average_execution_price": [
                processed.get(second, empty).get("average_execution_price") for second in seconds
            ],
        }

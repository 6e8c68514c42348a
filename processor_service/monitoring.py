"""The service instances the processor keeps, and its handler's timing, as
plain functions: a heartbeat as a row, rows as the contract's answers, and
the timing over the last TIMING_WINDOW_SECONDS (order_contract.instances).
SQL is in `store`."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from order_contract import PROCESSOR, Heartbeat, ServiceInstance, ServiceTiming, TimingFigures
from order_pipeline.times import iso_z
from order_pipeline.transactions import run_transaction
from processor_service import store
from processor_service.latency import latency_us

EPOCH = datetime(1970, 1, 1)


# --- instances -----------------------------------------------------------------------


def heartbeat_row(heartbeat: Heartbeat) -> dict:
    """A validated heartbeat as service_instances' columns."""
    since_event = heartbeat["seconds_since_event"]
    return {
        "instance_id": heartbeat["instance_id"],
        "service": heartbeat["service"],
        "host": heartbeat["host"],
        "pid": heartbeat["pid"],
        "version": heartbeat["version"],
        "git_commit": heartbeat["commit"],
        # Validated as ISO 8601 with a Z: UTC, stored naive.
        "started_at": datetime.fromisoformat(heartbeat["started_at"]).replace(tzinfo=None),
        "workers_active": heartbeat["workers_active"],
        "workers_max": heartbeat["workers_max"],
        "ms_since_event": None if since_event is None else round(since_event * 1000),
        "events_waiting": heartbeat["events_waiting"],
        "queue_ready": heartbeat["queue_ready"],
    }


def record_heartbeat(db, heartbeat: Heartbeat) -> None:
    row = heartbeat_row(heartbeat)
    run_transaction(
        db, lambda session: store.record_heartbeat(session, row), name="recording a heartbeat"
    )


def instance_as_dict(row, seconds_since_seen: float) -> ServiceInstance:
    return {
        "instance_id": row.instance_id,
        "service": row.service,
        "host": row.host,
        "pid": row.pid,
        "version": row.version,
        "commit": row.git_commit,
        "started_at": iso_z(row.started_at),
        "workers_active": row.workers_active,
        "workers_max": row.workers_max,
        "seconds_since_event": None if row.ms_since_event is None else row.ms_since_event / 1000,
        "events_waiting": row.events_waiting,
        "queue_ready": row.queue_ready,
        "last_seen_at": iso_z(row.last_seen_at),
        "seconds_since_seen": max(seconds_since_seen, 0.0),
    }


# --- timing ------------------------------------------------------------------------------


def handling_shard(instance_id: str) -> int:
    """The handling_seconds shard an instance writes to (its id is hex)."""
    return int(instance_id, 16) % store.HANDLING_SHARDS


@dataclass(frozen=True)
class Handling:
    """Which handling_seconds shard a batch is counted in (its instance's),
    and when the handler took it (time.monotonic())."""

    shard: int
    taken: float

    @classmethod
    def starting_now(cls, instance_id: str) -> "Handling":
        return cls(handling_shard(instance_id), time.monotonic())

    def elapsed_us(self) -> int:
        return round((time.monotonic() - self.taken) * 1_000_000)


def epoch_second(moment: datetime) -> int:
    """The epoch second of a naive UTC datetime."""
    return (moment - EPOCH) // timedelta(seconds=1)


def handling_figures(results, processing_us: int) -> dict:
    """{second: figures} to add for results stored by one batch whose
    handler has run `processing_us` so far: each order counts it as its
    processing time, and its latency (creation to processed_at) as its
    critical time when its created_at is known."""
    by_second = {}
    for result in results:
        figures = by_second.setdefault(
            epoch_second(result.processed_at),
            {"processed": 0, "processing_us_sum": 0, "critical_orders": 0, "critical_us_sum": 0},
        )
        figures["processed"] += 1
        figures["processing_us_sum"] += processing_us
        critical = latency_us(result)
        if critical is not None:
            figures["critical_orders"] += 1
            figures["critical_us_sum"] += critical
    return by_second


def timing_figures(sums: dict, window_seconds: int) -> TimingFigures:
    """The contract's figures from handling_seconds' sums over a window."""
    processed, critical = sums.get("processed", 0), sums.get("critical_orders", 0)
    retries = sums.get("retries", 0)
    return {
        "processed": processed,
        "throughput_per_second": processed / window_seconds,
        "processing_time_ms": (sums["processing_us_sum"] / processed / 1000 if processed else None),
        "critical_time_ms": sums["critical_us_sum"] / critical / 1000 if critical else None,
        "retries": retries,
        "retries_per_second": retries / window_seconds,
    }


def timing_as_dict(sums: dict, window_seconds: int) -> ServiceTiming:
    """ServiceTiming from handling_seconds' sums over the window: every row
    is a processor instance's, so they are the processor's figures."""
    return {
        "window_seconds": window_seconds,
        "services": {PROCESSOR: timing_figures(sums, window_seconds)},
    }

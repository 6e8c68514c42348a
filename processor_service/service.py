"""The order_processor nameko service: entrypoints only; the work is in
`processing` and `store`."""

import logging
import time

from order_contract import (
    DEFAULT_AUDIT_LIMIT,
    DEFAULT_DEAD_LETTER_LIMIT,
    DEFAULT_GROUP_LIMIT,
    GENERATOR,
    INSTANCE_RETENTION_SECONDS,
    MAX_AUDIT_LIMIT,
    MAX_GROUP_LIMIT,
    ORDER_CREATED,
    PROCESSOR,
    TIMING_WINDOW_SECONDS,
    DeadLetterNotParked,
    InvalidArgument,
    InvalidOrderId,
    InvalidPayload,
    UnknownDeadLetter,
    validate_actor,
    validate_before,
    validate_bounded,
    validate_dead_letter_id,
    validate_dead_letter_ids,
    validate_group,
    validate_heartbeat,
    validate_limit,
    validate_order_id,
    validate_order_ids,
    validate_since,
)
from order_pipeline.extensions.batch_events import batch_event_handler
from order_pipeline.extensions.checked_database import CheckedDatabase
from order_pipeline.extensions.heartbeats import Heartbeat, record_heartbeats
from order_pipeline.extensions.rpc import rpc
from order_pipeline.extensions.rpc_proxy import TimeoutRpcProxy
from order_pipeline.extensions.runtime_metrics import RuntimeMetrics
from order_pipeline.extensions.service_settings import Settings
from order_pipeline.extensions.timer import configured_timer
from order_pipeline.extensions.tracing import Tracing
from order_pipeline.logs import log_order
from order_pipeline.retention import log_pass
from order_pipeline.settings import retention_interval_seconds
from processor_service import (
    audit,
    dead_letter_edits,
    dead_letters,
    monitoring,
    processing,
    retention,
    store,
)
from processor_service.dependencies import (
    DeadLetterMover,
    PriceSource,
    ReplayPublisher,
    SetAsideCounts,
)
from processor_service.models import Base
from processor_service.settings import processor_metrics_address, result_retention

log = logging.getLogger(__name__)


def event_trace_ids(payloads, telemetry):
    """{order id: the trace id of its event} for a batch's payloads."""
    trace_ids = {}
    for index, payload in enumerate(payloads):
        order_id = payload.get("order_id") if isinstance(payload, dict) else None
        trace_id = telemetry.event_trace_id(index)
        if isinstance(order_id, int) and isinstance(trace_id, str):
            trace_ids.setdefault(order_id, trace_id)
    return trace_ids


class OrderProcessorService:
    name = PROCESSOR
    tracing = Tracing()

    db = CheckedDatabase(Base)
    order_generator = TimeoutRpcProxy(GENERATOR)
    prices = PriceSource()
    dead_letter_mover = DeadLetterMover()
    replay_publisher = ReplayPublisher()
    set_aside_counts = SetAsideCounts()
    runtime_metrics = RuntimeMetrics(processor_metrics_address)
    heartbeat = Heartbeat()
    retention = Settings(result_retention)

    @batch_event_handler(GENERATOR, ORDER_CREATED)
    def handle_order_created(self, payloads):
        """payloads: a batch of OrderCreated events, [{"order_id": 42}, ...].

        Returns one outcome per event (None, or the error that failed it);
        the handler acks, retries or dead-letters each accordingly.
        """
        outcome = processing.process_order_batch(
            payloads,
            self.order_generator.get_orders,
            self.prices,
            self.db,
            self.heartbeat.instance_id,
        )
        trace_ids = event_trace_ids(payloads, self.tracing)
        for result in outcome.stored:
            log_order(
                processing.execution_line(result), result.order_id, trace_ids.get(result.order_id)
            )
        if outcome.duplicates:
            log.info(
                "%d redelivered OrderCreated event(s) for orders already processed: ignored",
                outcome.duplicates,
            )
        return outcome.failures

    @configured_timer(read_interval=retention_interval_seconds)
    def prune_results(self):
        """Delete results past RESULT_RETENTION_DAYS whose orders are gone (when set)."""
        if not self.retention.on:
            return
        report = retention.prune_results(self.db, self._existing_ids, self.retention)
        log_pass(log, report, "result(s)", "their orders still exist")

    def _existing_ids(self, order_ids):
        return [order["id"] for order in self.order_generator.get_orders(order_ids)]

    @rpc
    def metrics(self):
        """{"total_orders_processed": 3, "average_execution_price": "1234.50"}"""
        return processing.metrics_as_dict(*store.totals(self.db.session))

    @rpc
    def telemetry(self):
        """The pipeline-wide figures behind the gateway's Prometheus metrics
        (order_contract.ProcessorTelemetry), read in one transaction."""
        with self.db.get_session() as session:
            return processing.telemetry_as_dict(
                store.totals(session),
                store.set_aside_counts(session),
                store.latency_histogram(session),
            )

    # --- service instances and timing: see order_contract.instances ----------

    @record_heartbeats
    def record_heartbeat(self, heartbeat):
        """heartbeat: what an instance of any service says of itself,
        {"instance_id": "9f2c4e1a0b3d5f67", "service": "order_generator",
        "host": ..., "pid": ..., "workers_active": 1, ...} (order_contract.Heartbeat)."""
        try:
            heartbeat = validate_heartbeat(heartbeat)
        except InvalidPayload as exc:
            log.warning("a heartbeat was ignored: %s", exc)
            return
        monitoring.record_heartbeat(self.db, heartbeat)

    @rpc
    def service_instances(self):
        """Every instance seen within INSTANCE_RETENTION_SECONDS, with its last
        heartbeat and how long ago it came: [ServiceInstance, ...]."""
        rows = store.service_instances(self.db.session, INSTANCE_RETENTION_SECONDS)
        return [monitoring.instance_as_dict(row, seconds) for row, seconds in rows]

    @rpc
    def service_timing(self):
        """The OrderCreated handler's throughput, processing and critical
        time and retries over the last TIMING_WINDOW_SECONDS, summed over
        every processor instance (order_contract.ServiceTiming)."""
        sums = store.handling_in_window(self.db.session, TIMING_WINDOW_SECONDS)
        return monitoring.timing_as_dict(sums, TIMING_WINDOW_SECONDS)

    @rpc(expected_exceptions=InvalidOrderId)
    def get_result(self, order_id):
        """The processing result of an order, or None if not processed yet."""
        row = store.get_result(self.db.session, validate_order_id(order_id))
        return None if row is None else processing.result_as_dict(row)

    @rpc(expected_exceptions=InvalidOrderId)
    def get_results(self, order_ids):
        """`get_results([1, 2, 3])` -> the results of those already
        processed, as get_result gives them, in one query."""
        rows = store.get_results(self.db.session, validate_order_ids(order_ids))
        return [processing.result_as_dict(row) for row in rows]

    @rpc(expected_exceptions=InvalidOrderId)
    def processed_order_ids(self, order_ids):
        """`processed_order_ids([1, 2, 3])` -> [1, 3]: those with a result,
        ids only (the generator's retention asks this of each batch)."""
        return store.processed_order_ids(self.db.session, validate_order_ids(order_ids))

    @rpc(expected_exceptions=InvalidArgument)
    def processed_per_second(self, since):
        """Per second since `since` (an epoch second, at most CHART_SECONDS
        back): [{"second", "processed", "average_execution_price",
        "latency_p50_ms", "latency_p95_ms"}, ...]; empty seconds left out."""
        since = processing.epoch_second_as_utc(validate_since(since, time.time()))
        return processing.processed_seconds_as_dicts(
            store.processed_per_second(self.db.session, since)
        )

    # --- dead letters: see order_contract.dead_letters and dead_letters.py --------

    @rpc(expected_exceptions=InvalidArgument)
    def dead_letters(self, limit=DEFAULT_DEAD_LETTER_LIMIT):
        """The first `limit` parked dead letters, oldest first."""
        return dead_letters.overview(self.db.session, validate_limit(limit))[1]

    @rpc(expected_exceptions=InvalidArgument)
    def dead_letter_overview(self, limit=DEFAULT_DEAD_LETTER_LIMIT):
        """{"count": all parked dead letters, "dead_letters": the first
        `limit`}, read in one transaction."""
        with self.db.get_session() as session:
            count, listed = dead_letters.overview(session, validate_limit(limit))
        return {"count": count, "dead_letters": listed}

    @rpc(expected_exceptions=InvalidArgument)
    def replay_dead_letters(self, ids=None, actor=None):
        """Send the dead letters named (the oldest 1000 when None) back to be
        handled again, each once: {"replayed": n}. `actor` says who asked,
        for the audit trail (order_contract.triage)."""
        if ids is not None:
            ids = validate_dead_letter_ids(ids)
        actor = validate_actor(actor)
        return {"replayed": dead_letters.replay(self.db, self.replay_publisher, ids, actor)}

    @rpc(expected_exceptions=InvalidArgument)
    def discard_dead_letters(self, ids, actor=None):
        """Set the dead letters named aside for good (each is logged):
        {"discarded": n}."""
        ids, actor = validate_dead_letter_ids(ids), validate_actor(actor)
        return {"discarded": dead_letters.discard(self.db, ids, actor)}

    # --- failure triage: see order_contract.triage -------------------------------------

    @rpc(expected_exceptions=InvalidArgument)
    def dead_letter(self, dead_letter_id):
        """One dead letter in full, whatever its state, or None."""
        validate_dead_letter_id(dead_letter_id)
        with self.db.get_session() as session:
            return dead_letter_edits.detail(session, dead_letter_id)

    @rpc(expected_exceptions=InvalidArgument)
    def dead_letter_groups(self, limit=DEFAULT_GROUP_LIMIT):
        """{"count", "recent_seconds", "groups": the `limit` largest groups
        of parked dead letters}."""
        limit = validate_bounded("limit", limit, MAX_GROUP_LIMIT)
        with self.db.get_session() as session:
            return dead_letters.groups(session, limit)

    @rpc(expected_exceptions=InvalidArgument)
    def replay_dead_letter_group(self, group, actor=None):
        """Replay a group's parked dead letters (up to 1000), each once:
        {"replayed": n, "left": m}."""
        group, actor = validate_group(group), validate_actor(actor)
        return dead_letters.replay_group(self.db, self.replay_publisher, group, actor)

    @rpc(expected_exceptions=InvalidArgument)
    def discard_dead_letter_group(self, group, actor=None):
        """Discard a group's parked dead letters (up to 1000), each once:
        {"discarded": n, "left": m}."""
        group, actor = validate_group(group), validate_actor(actor)
        return dead_letters.discard_group(self.db, group, actor)

    @rpc(
        expected_exceptions=(
            InvalidArgument,
            InvalidPayload,
            UnknownDeadLetter,
            DeadLetterNotParked,
        )
    )
    def edit_dead_letter(self, dead_letter_id, payload, actor=None):
        """Send `payload` ({"order_id": 43}) as a new message in place of a
        parked dead letter, which becomes `edited`: {"edited", "message_id",
        "payload"}."""
        validate_dead_letter_id(dead_letter_id)
        actor = validate_actor(actor)
        return dead_letter_edits.edit(
            self.db,
            self.replay_publisher,
            lambda order_id: bool(self.order_generator.get_orders([order_id])),
            dead_letter_id,
            payload,
            actor,
        )

    @rpc(expected_exceptions=InvalidArgument)
    def dead_letter_audit(self, before=None, limit=DEFAULT_AUDIT_LIMIT):
        """The audit trail, newest first: {"entries", "next_before"}."""
        before, limit = validate_before(before), validate_bounded("limit", limit, MAX_AUDIT_LIMIT)
        with self.db.get_session() as session:
            return audit.page(session, before, limit)

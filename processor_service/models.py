"""Tables owned by order_processor.

order_process.order_id is an id of order_generator's orders, with no foreign
key (each service owns its tables; the processor confirms every order over
RPC). order_created_at is the order's created_at as the generator reported
it, kept so that latency (created to processed) is read from this table
alone; it is NULL for rows stored before the column existed.
"""

from sqlalchemy import BigInteger, Index, Integer, Numeric, SmallInteger, String
from sqlalchemy.dialects.mysql import DATETIME, LONGBLOB, LONGTEXT, MEDIUMTEXT
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class OrderProcess(Base):
    """One row per processed order: the order's price at execution."""

    __tablename__ = "order_process"

    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    unit_price = mapped_column(Numeric(16, 4), nullable=False)
    execution_price = mapped_column(Numeric(22, 2), nullable=False)
    # Indexed: the console reads the last minutes by processing time.
    processed_at = mapped_column(DATETIME(fsp=6), nullable=False, index=True)
    order_created_at = mapped_column(DATETIME(fsp=6), nullable=True)


class ProcessingTotals(Base):
    """Running count and sum of execution prices, kept in the same
    transaction as each order_process insert so /metrics reads a few rows
    instead of scanning the table. Spread over shards (order_id modulo) so
    concurrent processors do not queue on one row lock."""

    __tablename__ = "processing_totals"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    orders_processed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    execution_price_sum = mapped_column(Numeric(38, 2), nullable=False)


class PrunedResults(Base):
    """What retention has deleted from order_process: one row (id 1), the
    orders and the sum of their execution prices, added to in the
    transaction that deletes them. order_process plus this row is every
    order ever processed, which processing_totals (what /metrics reads)
    counts: the running totals stay as they were when old rows go."""

    __tablename__ = "pruned_results"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(BigInteger, nullable=False)
    execution_price_sum = mapped_column(Numeric(38, 2), nullable=False)


class LatencyBucket(Base):
    """The end-to-end latency histogram (created to processed): how many
    orders had a latency above the next lower bound and at most `le_us`
    microseconds, and the sum of their latencies. Kept in the same
    transaction as each order_process insert, so it always agrees with the
    table; sharded like processing_totals. The bucket above the last bound
    has le_us = 2**63 - 1."""

    __tablename__ = "latency_histogram"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    le_us: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(BigInteger, nullable=False)
    latency_us_sum = mapped_column(Numeric(38, 0), nullable=False)


class ServiceInstanceRow(Base):
    """The last heartbeat of every instance of every service (the gateway
    included): what it said of itself (order_contract.Heartbeat) and when it
    was recorded, by the database's clock, so that every reader measures
    silence against one clock. A row per instance that ever ran, never
    deleted (the processor deletes only old results): the listing shows those seen
    within INSTANCE_RETENTION_SECONDS."""

    __tablename__ = "service_instances"

    instance_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    git_commit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    started_at = mapped_column(DATETIME(fsp=6), nullable=False)
    # Indexed: the listing reads the last hour by it.
    last_seen_at = mapped_column(DATETIME(fsp=6), nullable=False, index=True)
    workers_active: Mapped[int] = mapped_column(Integer, nullable=False)
    workers_max: Mapped[int] = mapped_column(Integer, nullable=False)
    # NULL for an instance that consumes no events (not a processor).
    ms_since_event: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    events_waiting: Mapped[int | None] = mapped_column(Integer, nullable=True)
    queue_ready: Mapped[int | None] = mapped_column(Integer, nullable=True)


class HandlingSecond(Base):
    """What the processors' OrderCreated handlers did in one second (an epoch
    second, by the processor's clock): orders stored (by their processed_at),
    the sum of their processing time (each order counts its batch's, from the
    handler taking it to writing its results), the sum of their critical
    time (creation to processed_at, for the orders whose created_at is
    known), and the events sent to be retried. Written in the transaction
    that stores the results (the retries as the broker takes them).

    A ring, so that nothing is ever deleted: `slot` is the second modulo
    HANDLING_SLOTS (longer than the timing's window), and a write for a newer
    second than the slot holds starts it again. Sharded like
    processing_totals, by the writing instance, so that concurrent
    processors rarely wait on one row; every row exists from the migration
    on, so writing only ever updates. The timing over the last 10 minutes is
    a sum over the rows whose `second` is in it, never over order_process."""

    __tablename__ = "handling_seconds"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Indexed: the window is read by it.
    second: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    processed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    processing_us_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    critical_orders: Mapped[int] = mapped_column(BigInteger, nullable=False)
    critical_us_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    retries: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EventsSetAside(Base):
    """How many OrderCreated events the handler has set aside, by outcome
    ("retried": sent to a delay queue; "dead_lettered": parked on the
    dead-letter queue), counted as the broker confirms each copy."""

    __tablename__ = "events_set_aside"

    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)


class DeadLetter(Base):
    """One OrderCreated event the handler set aside, as the processor took it
    off the dead-letter queue (processor_service.dead_letters): everything
    needed to show it, group it and send it back. `id` is its dead-letter id,
    so a message taken twice is kept once. A row is never deleted: replaying,
    discarding or editing it sets `state` and `resolved_at` once.

    `fingerprint` names its failure group (processor_service.failure_groups),
    `cause` is the normalised message the group is shown by."""

    __tablename__ = "dead_letters"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    # parked, replayed, discarded, edited
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    dead_lettered_at = mapped_column(DATETIME(fsp=6), nullable=False)
    resolved_at = mapped_column(DATETIME(fsp=6), nullable=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(1000), nullable=False)  # scrubbed
    error_type: Mapped[str] = mapped_column(String(100), nullable=False)
    error_message: Mapped[str] = mapped_column(String(500), nullable=False)  # scrubbed
    failing_frame: Mapped[str | None] = mapped_column(String(300), nullable=True)
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    first_failed_at = mapped_column(DATETIME(fsp=6), nullable=True)
    last_failed_at = mapped_column(DATETIME(fsp=6), nullable=True)
    # [{"at", "error_type", "message", "frame"}, ...], oldest first (JSON)
    failures = mapped_column(MEDIUMTEXT, nullable=False)
    # The message itself, to send it back as it came.
    body = mapped_column(LONGBLOB, nullable=False)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content_encoding: Mapped[str | None] = mapped_column(String(100), nullable=True)
    headers = mapped_column(LONGTEXT, nullable=False)  # JSON
    fingerprint: Mapped[str] = mapped_column(String(16), nullable=False)
    cause: Mapped[str] = mapped_column(String(500), nullable=False)
    # An edited letter: the id of the message sent in its place.
    edited_as: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (
        # The listing: parked letters, oldest first.
        Index("ix_dead_letters_state_time", "state", "dead_lettered_at", "id"),
        # The groups, and a group's letters.
        Index("ix_dead_letters_state_group", "state", "fingerprint", "dead_lettered_at"),
    )


class DeadLetterAudit(Base):
    """The audit trail: one row per replay, discard or edit asked of the
    dead letters, written in the transaction that acted (so there is no
    action without its row, nor a row for an action that did not happen),
    or, for one refused or failed, right after. Append-only: nothing in the
    code updates or deletes a row, and the processor's database user may
    only SELECT and INSERT here (order_pipeline/identities.py)."""

    __tablename__ = "dead_letter_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at = mapped_column(DATETIME(fsp=6), nullable=False)
    actor: Mapped[str] = mapped_column(String(32), nullable=False)  # "control", "rpc"...
    token_fingerprint: Mapped[str | None] = mapped_column(String(24), nullable=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # replay, discard, edit
    scope: Mapped[str] = mapped_column(String(16), nullable=False)  # ids, all, group, letter
    target: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dead_letter_ids = mapped_column(MEDIUMTEXT, nullable=False)  # JSON list
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # done, refused, failed
    detail: Mapped[str] = mapped_column(String(1000), nullable=False)
    change = mapped_column(MEDIUMTEXT, nullable=True)  # an edit's, JSON

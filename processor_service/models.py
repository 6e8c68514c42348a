"""Tables owned by order_processor.

order_process.order_id is an id of order_generator's orders, with no foreign
key (each service owns its tables; the processor confirms every order over
RPC). order_created_at is the order's created_at as the generator reported
it, kept so that latency (created to processed) is read from this table
alone; it is NULL for rows stored before the column existed.
"""

from sqlalchemy import BigInteger, Numeric, SmallInteger, String
from sqlalchemy.dialects.mysql import DATETIME
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


class EventsSetAside(Base):
    """How many OrderCreated events the handler has set aside, by outcome
    ("retried": sent to a delay queue; "dead_lettered": parked on the
    dead-letter queue), counted as the broker confirms each copy."""

    __tablename__ = "events_set_aside"

    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)

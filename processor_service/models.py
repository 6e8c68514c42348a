"""Tables owned by order_processor.

order_process.order_id references orders.id (order_generator's table); the
foreign key is created by this service's migration, not declared here,
because the orders table belongs to another service's metadata.
"""

from sqlalchemy import BigInteger, Numeric, SmallInteger
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
    processed_at = mapped_column(DATETIME(fsp=6), nullable=False)


class ProcessingTotals(Base):
    """Running count and sum of execution prices, kept in the same
    transaction as each order_process insert so /metrics reads a few rows
    instead of scanning the table. Spread over shards (order_id modulo) so
    concurrent processors do not queue on one row lock."""

    __tablename__ = "processing_totals"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    orders_processed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    execution_price_sum = mapped_column(Numeric(38, 2), nullable=False)

"""Tables owned by order_generator. Other services reach them only over RPC."""

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.dialects.mysql import DATETIME, VARCHAR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Microsecond precision, stored as naive UTC.
Timestamp = DATETIME(fsp=6)
# "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"
TRACEPARENT_LENGTH = 55
CREATE_TOKEN_LENGTH = 16


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    # Indexed: the console counts the orders of each of the last seconds.
    created_at = mapped_column(Timestamp, nullable=False, index=True)
    # A random token per create transaction, shared by the orders it
    # stores: after a connection lost during COMMIT, the orders with this
    # token and created_at (indexed) say whether that commit was applied.
    create_token: Mapped[str | None] = mapped_column(
        VARCHAR(CREATE_TOKEN_LENGTH, charset="ascii", collation="ascii_bin"), nullable=True
    )


class OrderOutbox(Base):
    """Orders whose OrderCreated event the broker has not yet confirmed.

    Written in the same transaction as the order, deleted once the broker has
    confirmed and routed the event: an order is never committed without
    either its event or a row here (the transactional outbox pattern).
    """

    __tablename__ = "order_outbox"

    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    created_at = mapped_column(Timestamp, nullable=False)
    # The W3C traceparent of the span that created the order, so that its
    # event continues the order's trace whoever publishes it, and when.
    traceparent: Mapped[str | None] = mapped_column(String(TRACEPARENT_LENGTH), nullable=True)


class IdempotencyKey(Base):
    """A client's key for an order (POST /orders' Idempotency-Key): a retry
    with the same key within IDEMPOTENCY_WINDOW gets that order back.

    Inserted in the order's transaction; the primary key on the key is what
    stops a concurrent retry from creating a second order. Compared byte
    for byte (ascii_bin): keys differing in case are different keys.
    """

    __tablename__ = "idempotency_keys"

    idempotency_key: Mapped[str] = mapped_column(
        VARCHAR(255, charset="ascii", collation="ascii_bin"), primary_key=True
    )
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
    )
    # Indexed: expired keys are deleted oldest first.
    created_at = mapped_column(Timestamp, nullable=False, index=True)


class OrderCount(Base):
    """How many orders have been created, spread over ORDER_COUNT_SHARDS
    rows: each create adds its orders to one shard, picked at random, in the
    order's transaction, so concurrent creates do not queue on one row lock;
    the count is the sum of the shards, exact at any commit."""

    __tablename__ = "order_counts"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    orders_created: Mapped[int] = mapped_column(BigInteger, nullable=False)


class GeneratorState(Base):
    """A single row (id=1): whether generation is on, and tick bookkeeping.

    Kept in the database so that on/off survives a restart, and so that any
    number of generator instances agree on whose tick creates the order.
    """

    __tablename__ = "generator_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    running: Mapped[bool] = mapped_column(Boolean, nullable=False)
    last_tick_at = mapped_column(Timestamp, nullable=True)

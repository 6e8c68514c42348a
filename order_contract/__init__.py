"""What the order pipeline's services agree on, and nothing else.

Services never import each other: the generator, the processor and the
gateway each import this package (and `order_pipeline` plumbing) for the
names they call each other by, the events they exchange, the errors that
cross an RPC boundary and the limits both sides check.

    from order_contract import GENERATOR, OrderCreated, InvalidQuantity
"""

from order_contract.console import (
    CHART_SECONDS,
    LATENCY_PERCENTILES,
    MAX_RECENT_ORDERS,
    RECENT_ORDERS,
    ProcessedSecond,
    validate_recent_limit,
    validate_since,
)
from order_contract.dead_letters import (
    DEAD_LETTER_FIELDS,
    DEFAULT_DEAD_LETTER_LIMIT,
    MAX_BODY_CHARS,
    MAX_DEAD_LETTERS_PER_CALL,
    DeadLetter,
    validate_dead_letter_ids,
    validate_limit,
)
from order_contract.errors import (
    DeadLetterNotParked,
    InvalidArgument,
    InvalidOrderId,
    InvalidPayload,
    InvalidQuantity,
    UnknownDeadLetter,
)
from order_contract.events import ORDER_CREATED, OrderCreated
from order_contract.limits import (
    IDEMPOTENCY_WINDOW,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_IDS_PER_CALL,
    MAX_ORDER_ID,
    MAX_ORDERS_PER_CALL,
    MAX_QUANTITY,
    validate_idempotency_key,
    validate_order_id,
    validate_order_ids,
    validate_quantities,
    validate_quantity,
)
from order_contract.queues import DEAD_LETTER_QUEUE, ORDER_CREATED_QUEUE
from order_contract.services import GATEWAY, GENERATOR, PROCESSOR
from order_contract.telemetry import (
    DEAD_LETTERED,
    RETRIED,
    SET_ASIDE_OUTCOMES,
    LatencyHistogram,
    ProcessorTelemetry,
)
from order_contract.triage import (
    DEFAULT_AUDIT_LIMIT,
    DEFAULT_GROUP_LIMIT,
    MAX_AUDIT_LIMIT,
    MAX_GROUP_LIMIT,
    RECENT_SECONDS,
    Actor,
    AuditEntry,
    AuditPage,
    DeadLetterDetail,
    DeadLetterGroup,
    DeadLetterGroups,
    Edited,
    validate_actor,
    validate_before,
    validate_bounded,
    validate_dead_letter_id,
    validate_group,
)

__all__ = [
    "CHART_SECONDS",
    "DEFAULT_AUDIT_LIMIT",
    "DEFAULT_GROUP_LIMIT",
    "MAX_AUDIT_LIMIT",
    "MAX_GROUP_LIMIT",
    "RECENT_SECONDS",
    "Actor",
    "AuditEntry",
    "AuditPage",
    "DeadLetterDetail",
    "DeadLetterGroup",
    "DeadLetterGroups",
    "DeadLetterNotParked",
    "Edited",
    "UnknownDeadLetter",
    "validate_actor",
    "validate_before",
    "validate_bounded",
    "validate_dead_letter_id",
    "validate_group",
    "DEAD_LETTERED",
    "DEAD_LETTER_FIELDS",
    "DEAD_LETTER_QUEUE",
    "DEFAULT_DEAD_LETTER_LIMIT",
    "GATEWAY",
    "GENERATOR",
    "IDEMPOTENCY_WINDOW",
    "LATENCY_PERCENTILES",
    "MAX_BODY_CHARS",
    "MAX_DEAD_LETTERS_PER_CALL",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_IDS_PER_CALL",
    "MAX_ORDER_ID",
    "MAX_ORDERS_PER_CALL",
    "MAX_QUANTITY",
    "MAX_RECENT_ORDERS",
    "ORDER_CREATED",
    "ORDER_CREATED_QUEUE",
    "PROCESSOR",
    "RECENT_ORDERS",
    "RETRIED",
    "SET_ASIDE_OUTCOMES",
    "DeadLetter",
    "InvalidArgument",
    "InvalidOrderId",
    "InvalidPayload",
    "InvalidQuantity",
    "LatencyHistogram",
    "OrderCreated",
    "ProcessedSecond",
    "ProcessorTelemetry",
    "validate_dead_letter_ids",
    "validate_idempotency_key",
    "validate_limit",
    "validate_order_id",
    "validate_order_ids",
    "validate_quantities",
    "validate_quantity",
    "validate_recent_limit",
    "validate_since",
]

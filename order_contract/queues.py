"""The broker queues other parties look at: the processor's OrderCreated
queue and the dead-letter queue beside it.

nameko names an event handler's queue `evt-<source>-<event>--<service>.<method>`;
the processor's handler method is `handle_order_created`
(tests/unit/test_console.py checks these names against the handler's own).
"""

from order_contract.events import ORDER_CREATED
from order_contract.services import GENERATOR, PROCESSOR

ORDER_CREATED_QUEUE = f"evt-{GENERATOR}-{ORDER_CREATED}--{PROCESSOR}.handle_order_created"
DEAD_LETTER_QUEUE = ORDER_CREATED_QUEUE + ".dead-letter"

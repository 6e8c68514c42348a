"""The event contract that order_generator publishes (one place for it).

Consumers import these names instead of repeating the strings.
"""
SERVICE_NAME = "order_generator"
ORDER_CREATED = "OrderCreated"


def order_created_payload(order_id):
    return {"order_id": order_id}

"""order_processor: prices each created order and stores the result."""
SERVICE_NAME = "order_processor"

from processor_service.service import OrderProcessorService  # noqa: E402

__all__ = ["OrderProcessorService", "SERVICE_NAME"]

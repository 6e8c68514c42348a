"""order_processor: prices each created order and stores the result."""

from processor_service.service import OrderProcessorService

__all__ = ["OrderProcessorService"]

"""order_generator: creates orders on a timer and announces them."""

from generator_service.service import OrderGeneratorService

__all__ = ["OrderGeneratorService"]

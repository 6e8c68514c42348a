"""gateway: the HTTP face of the order pipeline."""

from gateway.service import GatewayService

__all__ = ["GatewayService"]

"""The nameko service names: what RPC proxies and event handlers address."""

GENERATOR = "order_generator"
PROCESSOR = "order_processor"
GATEWAY = "gateway"

"""A service with one do-nothing `@http` route, the ceiling POST /orders is
read against: what nameko 2.14's web server costs per request on this
machine, with the same client and request, and no RPC or database. (The
gateway has no do-nothing route of its own, and should not grow one for a
benchmark.) It serves on the address in WEB_SERVER_ADDRESS, like the
gateway.
"""

import json

from nameko.timer import timer
from nameko.web.handlers import http

NOOP_HTTP = "bench_noop_http"
# The shape of POST /orders' answer, so both write a body of the same size.
ANSWER = json.dumps({"id": 1, "quantity": 3, "created_at": "2026-01-01T00:00:00.000000"})


class NoopHttpService:
    name = NOOP_HTTP

    @http("POST", "/orders")
    def create_order(self, request):
        request.get_data()  # read the body, as the gateway does
        return 201, {"Content-Type": "application/json", "Location": "/orders/1"}, ANSWER

    @timer(interval=1)
    def wake(self):
        """Wakes the event loop once a second. `nameko run` handles SIGTERM
        by spawning the stop in a greenthread, which runs only when the hub
        wakes; Python retries the interrupted epoll wait after the handler
        (PEP 475), so a service with no AMQP consumer or timer would sleep
        through SIGTERM until its next request."""

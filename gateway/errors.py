"""Every error the gateway can answer with, as (HTTP status, code).

One table, so the mapping from an exception (local, or raised by a service
behind the gateway and re-raised here as its own type) to a JSON error is in
one place. Anything not listed is a 500 with a generic message: details go
to the log, never to the client.
"""

from order_contract import (
    DeadLetterNotParked,
    InvalidArgument,
    InvalidOrderId,
    InvalidPayload,
    InvalidQuantity,
    UnknownDeadLetter,
)
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable


class Refusal(Exception):
    """An error answer that may carry response headers of its own."""

    headers: dict = {}

    def __init__(self, message: str, headers: dict | None = None):
        super().__init__(message)
        if headers is not None:
            self.headers = headers


class BadRequest(Refusal):
    pass


class NotFound(Refusal):
    pass


class Unauthorized(Refusal):
    """Every 401 carries a WWW-Authenticate challenge (RFC 6750)."""

    headers = {"WWW-Authenticate": 'Bearer realm="order-pipeline"'}


class Forbidden(Refusal):
    pass


class TooManyAttempts(Refusal):
    """Too many refused tokens from one address: see gateway.auth."""


class GatewayBusy(Exception):
    """No room for the request now: see gateway.limits."""


ERRORS = {
    BadRequest: (400, "BAD_REQUEST"),
    InvalidOrderId: (400, "BAD_REQUEST"),
    InvalidQuantity: (400, "BAD_REQUEST"),
    InvalidArgument: (400, "BAD_REQUEST"),
    # A dead letter's edit the contract refuses (order_contract.triage).
    InvalidPayload: (400, "INVALID_PAYLOAD"),
    Unauthorized: (401, "UNAUTHORIZED"),
    Forbidden: (403, "FORBIDDEN"),
    TooManyAttempts: (429, "TOO_MANY_REQUESTS"),
    NotFound: (404, "NOT_FOUND"),
    UnknownDeadLetter: (404, "NOT_FOUND"),
    DeadLetterNotParked: (409, "CONFLICT"),
    RpcTimeout: (503, "SERVICE_UNAVAILABLE"),
    ServiceUnavailable: (503, "SERVICE_UNAVAILABLE"),
    GatewayBusy: (503, "SERVICE_UNAVAILABLE"),
}

INTERNAL_ERROR = (500, "INTERNAL_ERROR")
INTERNAL_ERROR_MESSAGE = "internal error; see the gateway log"

# HTTP errors raised before any handler runs: by routing (werkzeug) or while
# reading the request itself (`gateway.protocol`).
HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
    505: "HTTP_VERSION_NOT_SUPPORTED",
}


def http_code(status):
    """The JSON error code for an HTTP status raised outside the handlers."""
    return HTTP_CODES.get(status, f"HTTP_{status}")


def status_and_code(exc):
    for exc_type, status_code in ERRORS.items():
        if isinstance(exc, exc_type):
            return status_code
    return INTERNAL_ERROR

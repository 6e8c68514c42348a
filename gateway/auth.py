"""Bearer-token check for the gateway's control endpoints."""

import hmac
import logging

from nameko.extensions import DependencyProvider

from gateway.errors import Forbidden, Unauthorized
from gateway.settings import gateway_token

log = logging.getLogger(__name__)

HOW_TO_ENABLE = "set GATEWAY_TOKEN to a secret and send it as 'Authorization: Bearer <token>'"


# HTTP's optional whitespace; str.strip() would also drop e.g. U+00A0, so
# "Bearer <token>\xa0" would pass for the token.
OWS = " \t"


def bearer_token(authorization_header):
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = (authorization_header or "").strip(OWS).partition(" ")
    token = token.strip(OWS)
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def check_token(expected, authorization_header):
    """Raise unless the header carries the expected token.

    No token configured: control is off (403). No or malformed header: 401.
    Wrong token: 403. The comparison takes the same time wherever the
    tokens differ.
    """
    if not expected:
        raise Forbidden("control endpoints are disabled: " + HOW_TO_ENABLE)
    token = bearer_token(authorization_header)
    if token is None:
        raise Unauthorized("missing bearer token")
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        raise Forbidden("invalid token")


class ControlAuth(DependencyProvider):
    """Injects `require(request)`, which raises unless the request may
    start or stop generation, or replay or discard dead letters."""

    def setup(self):
        self.token = gateway_token(self.container.config)
        if not self.token:
            log.warning(
                "POST /start, /stop and /dead-letters/{replay,discard} are refused: %s",
                HOW_TO_ENABLE,
            )

    def get_dependency(self, worker_ctx):
        return lambda request: check_token(self.token, request.headers.get("Authorization"))

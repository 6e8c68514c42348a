"""Who may do what at the gateway, by bearer token.

- Control (POST /start, /stop, /orders, and the dead-letter actions: replay,
  discard, a group's replay and discard, an edit):
  GATEWAY_TOKEN, or GATEWAY_NEXT_TOKEN, so that a token can be rotated
  without downtime: set the next one, move the clients to it, then make it
  GATEWAY_TOKEN and unset GATEWAY_NEXT_TOKEN. No control token set: control
  is off (403).
- Reads (/status, /metrics, /orders/<id>, /dead-letters and its triage
  reads, /events): open,
  unless GATEWAY_READ_TOKEN is set; then they need the read token or a
  control token. /health, /openapi.json and the console's own files stay
  open: they show no data.

Answers follow RFC 6750: no token, or a wrong one, is a 401 with a
`WWW-Authenticate: Bearer` challenge; a read token on a control route is a
403 (insufficient scope). Each refusal is logged as a warning with the
client's address (never the token) and counted by reason in the gateway's
runtime metrics. Repeated wrong tokens from one address are slowed down:
past GATEWAY_REFUSALS_BEFORE_SLOWDOWN within FAILURE_WINDOW_SECONDS, that
address is answered 429 with Retry-After, without its token being looked
at, for a time that doubles with each further wrong token (up to
MAX_BLOCK_SECONDS). A missing token is no guess, and does not count there: a
page or a scraper without its token would otherwise lock out its address.
A request that passes clears its address's record. The comparison of tokens takes the
same time wherever they differ.

`control(request)` returns who is acting, for the dead letters' audit trail:
the name of the control token given ("control" for GATEWAY_TOKEN,
"control-next" for GATEWAY_NEXT_TOKEN) and a short fingerprint of it (the
first 12 hex digits of its SHA-256), which tells tokens apart across a
rotation and reveals nothing of the token itself.
"""

import hashlib
import hmac
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from nameko.extensions import DependencyProvider
from prometheus_client.core import CounterMetricFamily

from gateway.errors import Forbidden, TooManyAttempts, Unauthorized
from gateway.settings import GatewayTokens, gateway_refusals_before_slowdown, gateway_tokens

log = logging.getLogger(__name__)

REALM = "order-pipeline"
HOW_TO_ENABLE = "set GATEWAY_TOKEN to a secret and send it as 'Authorization: Bearer <token>'"
FAILURE_WINDOW_SECONDS = 60.0
MAX_BLOCK_SECONDS = 60.0
# Addresses remembered at most (the oldest forgotten first): memory stays
# bounded whoever sends refused requests.
MAX_ADDRESSES = 10_000
# What the audit trail calls each control token, in GatewayTokens.control's order.
CONTROL_TOKEN_NAMES = ("control", "control-next")
# Refusal reasons, as counted.
MISSING, INVALID, READ_ONLY, THROTTLED = "missing", "invalid", "read_only", "throttled"

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


def challenge(error: str | None = None) -> str:
    """The WWW-Authenticate header of a 401 (RFC 6750)."""
    value = f'Bearer realm="{REALM}"'
    return value if error is None else f'{value}, error="{error}"'


def matches(token: str, tokens: tuple[str, ...]) -> bool:
    """Whether `token` is one of `tokens`, each compared in constant time
    (all of them, whichever matches)."""
    return matching(token, tokens) is not None


def matching(token: str, tokens: tuple[str, ...]) -> int | None:
    """The index of `tokens` that `token` is, or None; every one compared,
    in constant time."""
    found = None
    for index, expected in enumerate(tokens):
        if hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
            found = index
    return found


def token_fingerprint(token: str) -> str:
    """`sha256:` and the first 12 hex digits of the token's SHA-256."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


@dataclass
class Record:
    failures: list = field(default_factory=list)  # monotonic times, within the window
    blocked_until: float = 0.0
    blocks: int = 0


class FailedAttempts:
    """Refusals per client address, and which addresses are slowed down."""

    def __init__(self, free_failures: int, clock=time.monotonic):
        self.free_failures = free_failures  # 0: never slowed down
        self.clock = clock
        self.records: OrderedDict[str, Record] = OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 if it may now."""
        record = self.records.get(address)
        if record is None:
            return 0.0
        return max(0.0, record.blocked_until - self.clock())

    def refused(self, address: str) -> None:
        now = self.clock()
        record = self.records.pop(address, None) or Record()
        self.records[address] = record  # the most recent last
        record.failures = [t for t in record.failures if now - t < FAILURE_WINDOW_SECONDS]
        record.failures.append(now)
        if self.free_failures and len(record.failures) > self.free_failures:
            record.blocks += 1
            block = min(MAX_BLOCK_SECONDS, 2.0 ** (record.blocks - 1))
            record.blocked_until = now + block
        while len(self.records) > MAX_ADDRESSES:
            self.records.popitem(last=False)

    def passed(self, address: str) -> None:
        self.records.pop(address, None)


class Access:
    """What a worker gets: `control(request)` and `read(request)` return if
    the request may go on (`control`, with who is acting: an
    order_contract.Actor), and raise otherwise."""

    def __init__(self, tokens: GatewayTokens, attempts: FailedAttempts, refusals: Counter):
        self.tokens = tokens
        self.attempts = attempts
        self.refusals = refusals

    def control(self, request) -> dict:
        if not self.tokens.control:
            raise Forbidden("control endpoints are disabled: " + HOW_TO_ENABLE)
        token = self._token(request)
        index = matching(token, self.tokens.control)
        if index is not None:
            self.attempts.passed(client_address(request))
            return {"name": CONTROL_TOKEN_NAMES[index], "token": token_fingerprint(token)}
        if matches(token, self.tokens.read):
            self._refuse(request, READ_ONLY)
            raise Forbidden(
                "the read token cannot start, stop or create; send the control token",
                headers={"WWW-Authenticate": challenge("insufficient_scope")},
            )
        self._refuse(request, INVALID)
        raise Unauthorized(
            "invalid token", headers={"WWW-Authenticate": challenge("invalid_token")}
        )

    def read(self, request) -> None:
        if not self.tokens.read:
            return
        token = self._token(request)
        if matches(token, self.tokens.read + self.tokens.control):
            self.attempts.passed(client_address(request))
            return
        self._refuse(request, INVALID)
        raise Unauthorized(
            "invalid token", headers={"WWW-Authenticate": challenge("invalid_token")}
        )

    def _token(self, request) -> str:
        address = client_address(request)
        wait = self.attempts.retry_after(address)
        if wait > 0:
            self.refusals[THROTTLED] += 1
            raise TooManyAttempts(
                "too many refused attempts from this address; try again later",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            self._refuse(request, MISSING, guess=False)
            raise Unauthorized("missing bearer token", headers={"WWW-Authenticate": challenge()})
        return token

    def _refuse(self, request, reason: str, guess: bool = True) -> None:
        address = client_address(request)
        self.refusals[reason] += 1
        if guess:
            self.attempts.refused(address)
        log.warning(
            "refused %s %s from %s: %s token", request.method, request.path, address, reason
        )


def client_address(request) -> str:
    """The peer's address. Forwarded headers are not trusted: behind a proxy,
    every client shares the proxy's address (docs/security.md)."""
    return request.remote_addr or "unknown"


class GatewayAccess(DependencyProvider):
    """`access = GatewayAccess()`: injects the service's Access. Also a
    Prometheus collector of its refusals, which the gateway's runtime
    metrics serve (order_pipeline.extensions.runtime_metrics)."""

    def setup(self):
        self.tokens = gateway_tokens(self.container.config)
        self.attempts = FailedAttempts(gateway_refusals_before_slowdown(self.container.config))
        self.refusals = Counter()
        if not self.tokens.control:
            log.warning(
                "POST /start, /stop, /orders and the dead-letter actions are refused: %s",
                HOW_TO_ENABLE,
            )

    def get_dependency(self, worker_ctx):
        return Access(self.tokens, self.attempts, self.refusals)

    def collect(self):
        family = CounterMetricFamily(
            "order_pipeline_gateway_auth_refusals",
            "Requests this gateway refused for their token, by reason "
            "(missing, invalid, read_only, throttled).",
            labels=["reason"],
        )
        for reason in (MISSING, INVALID, READ_ONLY, THROTTLED):
            family.add_metric([reason], self.refusals[reason])
        yield family

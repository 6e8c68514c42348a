"""Waiting, at start-up, for a broker or database that is not there yet.

Containers start together (compose, Kubernetes), and nothing guarantees the
order: podman-compose ignores `depends_on: condition: service_healthy`, and
Kubernetes has no such thing. A service may therefore start before its
broker or database answers, or before the provision step has created its
user. Each start-up check (`check_broker`, `check_connection`) is tried
again for up to STARTUP_WAIT_SECONDS, with one log line every few seconds
saying what it waits for; when the bound passes, the last failure stops the
service with the usual one line. 0 checks once.
"""

import logging
import time

from order_pipeline.errors import StartupError

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# How often a wait is reported: every failure would say the same thing once
# a second, from each extension that checks.
REPORT_EVERY_SECONDS = 10.0
_last_report: dict = {}


def retry_until_up(attempt, wait_seconds: float, what: str, clock=time.monotonic, sleep=time.sleep):
    """`attempt()` until it returns without a StartupError, for up to
    `wait_seconds`; then its last StartupError, saying how long it waited."""
    deadline = clock() + wait_seconds
    while True:
        try:
            return attempt()
        except StartupError as exc:
            left = deadline - clock()
            if left <= 0:
                if wait_seconds <= 0:
                    raise
                raise StartupError(
                    f"{exc.message} (still so after waiting {wait_seconds:g} s, "
                    "STARTUP_WAIT_SECONDS)"
                ) from None
            _report(what, exc.message, left, clock)
            sleep(min(RETRY_SECONDS, left))


def _report(what, reason, left, clock):
    now = clock()
    if now - _last_report.get(what, float("-inf")) >= REPORT_EVERY_SECONDS:
        _last_report[what] = now
        log.warning("waiting for %s, %.0f s more at most: %s", what, left, reason)

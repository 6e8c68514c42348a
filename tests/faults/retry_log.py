"""Reading the processor's retry warnings back, to tell back-off from a
hot loop. Each line is `<queue> failed (attempt N: <reason>); retrying in D s`
(order_pipeline.extensions.reliable_events)."""

import re
from collections import Counter

from order_pipeline.extensions.reliable_events import delay_for_attempt, retry_delays

RETRY_LINE = re.compile(r" failed \(attempt (\d+): .*?\); retrying in ([\d.]+) s", re.DOTALL)


def retries(outputs):
    """[(attempt, delay seconds)] for every retry the logs show."""
    return [
        (int(attempt), float(delay))
        for output in outputs
        for attempt, delay in RETRY_LINE.findall(output)
    ]


def expected_delay(attempt, first_delay, max_delay):
    return delay_for_attempt(retry_delays(first_delay, max_delay), attempt)


def attempts_within(seconds, first_delay, max_delay):
    """How many attempts back-off allows in `seconds`: a bound that a hot
    loop (retrying at once) would blow through."""
    delays = retry_delays(first_delay, max_delay)
    attempt, elapsed = 1, 0.0
    while elapsed <= seconds:
        elapsed += delay_for_attempt(delays, attempt)
        attempt += 1
    return attempt


def attempts_histogram(found):
    return Counter(attempt for attempt, _ in found)

from types import SimpleNamespace

import pytest

from order_pipeline.extensions.reliable_events import _attempt, delay_for_attempt, retry_delays


def test_retry_delays_double_up_to_the_cap():
    assert retry_delays(0.5, 30) == [0.5, 1, 2, 4, 8, 16, 30]
    assert retry_delays(1, 1) == [1]


@pytest.mark.parametrize("attempt, delay", [(1, 0.5), (2, 1), (7, 30), (50, 30)])
def test_each_attempt_waits_longer_until_the_cap(attempt, delay):
    assert delay_for_attempt(retry_delays(0.5, 30), attempt) == delay


@pytest.mark.parametrize(
    "headers, attempt",
    [
        (None, 0),
        ({}, 0),
        ({"x-attempt": 3}, 3),
        ({"x-attempt": "2"}, 2),
        ({"x-attempt": "junk"}, 0),
        ({"x-attempt": -4}, 0),
    ],
)
def test_attempt_count_is_read_defensively_from_headers(headers, attempt):
    assert _attempt(SimpleNamespace(headers=headers)) == attempt

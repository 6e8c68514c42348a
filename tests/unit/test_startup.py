"""order_pipeline.startup: a start-up check tried again within
STARTUP_WAIT_SECONDS, on a clock the test moves."""

import logging

import pytest

from order_pipeline import startup
from order_pipeline.errors import StartupError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def failing(times, then="up"):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= times:
            raise StartupError(f"cannot reach the broker (try {len(calls)})")
        return then

    return attempt, calls


def retry(attempt, wait, clock):
    return startup.retry_until_up(attempt, wait, "the broker", clock=clock, sleep=clock.sleep)


@pytest.fixture(autouse=True)
def fresh_reports():
    startup._last_report.clear()


def test_a_server_that_comes_up_within_the_wait_is_used():
    clock = Clock()
    attempt, calls = failing(5)
    assert retry(attempt, 60, clock) == "up"
    assert len(calls) == 6


def test_past_the_wait_the_last_failure_is_one_line_naming_the_setting():
    clock = Clock()
    attempt, calls = failing(1000)
    with pytest.raises(StartupError) as error:
        retry(attempt, 30, clock)
    assert str(error.value) == (
        f"cannot reach the broker (try {len(calls)}) "
        "(still so after waiting 30 s, STARTUP_WAIT_SECONDS)"
    )
    assert "\n" not in str(error.value)
    assert clock.now == 30


def test_no_wait_tries_once():
    clock = Clock()
    attempt, calls = failing(1)
    with pytest.raises(StartupError, match=r"^cannot reach the broker \(try 1\)$"):
        retry(attempt, 0, clock)
    assert len(calls) == 1


def test_the_wait_is_logged_every_ten_seconds_not_every_try(caplog):
    clock = Clock()
    attempt, _ = failing(25)
    with caplog.at_level(logging.WARNING, logger="order_pipeline.startup"):
        retry(attempt, 60, clock)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0] == "waiting for the broker, 60 s more at most: cannot reach the broker (try 1)"

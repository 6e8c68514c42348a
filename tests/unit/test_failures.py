"""A message's failures as it carries them (order_pipeline.failures): the
failing frame, the history kept in its header, read back defensively."""

import json
import os

from order_pipeline.failures import (
    MAX_FAILURES_KEPT,
    Failure,
    encode_failures,
    failing_frame,
    failure_of,
    located,
    read_failures,
    with_failure,
)
from order_pipeline.scrub import Scrubber
from order_pipeline.times import parse_iso_z

HERE = "tests/unit/test_failures.py"


def parse(text):
    return json.loads(text)  # raises inside the standard library


def caught(call):
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("it did not fail")


def line_of(function, text):
    source = open(__file__).read().splitlines()
    start = function.__code__.co_firstlineno
    return next(n for n in range(start, len(source) + 1) if text in source[n - 1])


def test_the_failing_frame_is_the_innermost_in_the_projects_code():
    # json's own frames are inside the failure, below parse(): the frame
    # named is parse's, the last the project had a hand in.
    error = caught(lambda: parse("{not json"))
    assert failing_frame(error) == f"{HERE}:parse:{line_of(parse, 'json.loads')}"


def test_an_exception_never_raised_has_no_frame_until_located():
    made = ValueError("made, not raised")
    assert failing_frame(made) is None

    def outcome():
        return located(ValueError("returned as an outcome"))

    assert failing_frame(outcome()) == f"{HERE}:outcome:{line_of(outcome, 'located(')}"


def test_a_failure_records_its_type_its_scrubbed_message_its_frame_and_when():
    error = caught(lambda: parse("{not json"))
    failure = failure_of(
        RuntimeError("price feed http://u:p@prices.internal/x failed at 10.0.0.1"), Scrubber()
    )
    assert failure.error_type == "RuntimeError"
    assert failure.message == "price feed <url> failed at <address>"
    assert failure.reason == "RuntimeError: price feed <url> failed at <address>"
    assert parse_iso_z(failure.at) is not None
    assert failure_of(error, Scrubber()).frame.startswith(HERE + ":parse:")


def entry(n):
    return Failure(
        at=f"2026-01-01T00:00:{n:02d}.000000Z", error_type="E", message=str(n), frame=None
    )


def test_the_history_keeps_the_first_failure_and_the_latest():
    history = []
    for n in range(1, 31):
        history = with_failure(history, entry(n))
    assert len(history) == MAX_FAILURES_KEPT
    assert [int(f.message) for f in history] == [1, *range(31 - (MAX_FAILURES_KEPT - 1), 31)]


def test_the_history_goes_through_its_header_and_back():
    history = [entry(1), Failure("2026-01-01T00:00:02Z", "OrderNotFound", "order 4", "a.py:f:3")]
    assert read_failures(encode_failures(history)) == history
    assert read_failures(encode_failures(history).encode()) == history


def test_a_header_that_is_not_a_history_reads_as_none():
    for junk in (None, 3, "", "{", '{"at": 1}', "[1, 2]", b"\xff"):
        assert read_failures(junk) == []
    # Strings cut to their columns' sizes; a missing field is empty.
    (odd,) = read_failures(json.dumps([{"message": "m" * 10_000}]))
    assert (odd.at, odd.error_type, len(odd.message), odd.frame) == ("", "", 500, None)


def test_project_paths_do_not_depend_on_where_the_checkout_is():
    error = caught(lambda: parse("{"))
    assert not failing_frame(error).startswith(os.sep)

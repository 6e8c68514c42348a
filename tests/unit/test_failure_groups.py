"""The fingerprint of a dead letter's cause (processor_service.failure_groups):
what differs between two failures of one cause is normalised away, what
tells two causes apart is kept."""

import re

import pytest

from processor_service.failure_groups import fingerprint, frame_of, normalise

FRAME = "processor_service/processing.py:process_order_batch:97"


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("order 42 does not exist", "order <n> does not exist"),
        ("order 9223372036854775807 does not exist", "order <n> does not exist"),
        ("timed out after 5.0 s, 2 tries left", "timed out after <n> s, <n> tries left"),
        ("delta -3 and 1e10 and 2.5E-3", "delta <n> and <n> and <n>"),
        # Quoted values, whatever the quotes.
        (
            "OrderCreated needs a positive integer order_id, got {'order_id': '42'}",
            "OrderCreated needs a positive integer order_id, got {<q>: <q>}",
        ),
        ('got {"order_id": "abc"}', "got {<q>: <q>}"),
        ("unknown column `qty7` here", "unknown column <q> here"),
        # Ids: UUIDs, hex digests and dead-letter ids, 0x numbers.
        ("request 123e4567-e89b-12d3-a456-426614174000 lost", "request <id> lost"),
        (
            "trace 4bf92f3577b34da6a3ce929d0e0e4736 letter 9f1c2a7b3d4e5f60",
            "trace <id> letter <id>",
        ),
        ("at address 0x7f3a1c", "at address <id>"),
        # Times, whole.
        ("expired at 2026-11-29T11:00:19.984126Z", "expired at <time>"),
        ("expired at 2026-11-29 11:00:19+01:00 or 2026-11-30", "expired at <time> or <time>"),
        # White space.
        ("  too   many\n\tspaces  ", "too many spaces"),
    ],
)
def test_what_differs_between_occurrences_is_replaced(message, normalised):
    assert normalise(message) == normalised


@pytest.mark.parametrize(
    "message",
    [
        "price feed <url> answered: bad gateway",  # the scrubber's own marks
        "cannot decode the body (text/plain): not JSON",
        "IPv4 and sha256 and utf8 stay words",
        "order-<n> and can't and won't",  # apostrophes are no quotes
    ],
)
def test_words_and_the_scrubbers_marks_stay(message):
    assert normalise(message.replace("order-<n>", "order-7")) == message


def test_a_message_quoting_another_stays_readable():
    """pymysql quotes its whole message: only the quoted host goes, so a
    refused connection and a refused login stay apart."""
    refused = "(2003, \"Can't connect to MySQL server on '<host>' ([Errno 111] refused)\")"
    denied = "(1045, \"Access denied for user '<account>' (using password: YES)\")"
    assert normalise(refused) == (
        '(<n>, "Can\'t connect to MySQL server on <q> ([Errno <n>] refused)")'
    )
    assert normalise(denied) == '(<n>, "Access denied for user <q> (using password: YES)")'
    assert fingerprint("OperationalError", refused, None) != fingerprint(
        "OperationalError", denied, None
    )


def test_the_failing_frame_counts_without_its_line():
    assert frame_of(FRAME) == "processor_service/processing.py:process_order_batch"
    assert frame_of(None) is None
    moved = FRAME.replace(":97", ":120")
    assert fingerprint("OrderNotFound", "order 1 does not exist", FRAME) == fingerprint(
        "OrderNotFound", "order 2 does not exist", moved
    )


def test_one_cause_one_fingerprint_and_each_part_tells_causes_apart():
    base = fingerprint("OrderNotFound", "order 1 does not exist", FRAME)
    assert re.fullmatch("[0-9a-f]{16}", base)
    assert fingerprint("OrderNotFound", "order 77 does not exist", FRAME) == base
    assert fingerprint("InvalidEvent", "order 1 does not exist", FRAME) != base
    assert fingerprint("OrderNotFound", "order 1 is gone", FRAME) != base
    other_place = "processor_service/pricing.py:unit_price:40"
    assert fingerprint("OrderNotFound", "order 1 does not exist", other_place) != base
    assert fingerprint("OrderNotFound", "order 1 does not exist", None) != base


def test_the_parts_cannot_run_into_each_other():
    """A type that ends where a message begins is not the same key."""
    assert fingerprint("A", "B c", None) != fingerprint("A B", "c", None)


def test_a_long_message_is_cut_to_what_the_column_holds():
    assert len(normalise("word " * 400)) == 500

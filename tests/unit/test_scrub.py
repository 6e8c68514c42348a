"""Error text scrubbed of what must not leave a service (order_pipeline.scrub).

The texts are the ones the libraries really produce: requests failing on a
price feed whose URL carries credentials, pymysql refused by a host that is
this machine and by an address (closed ports on this machine: nothing needs
to run), and SQLAlchemy's own rendering of a server's errors, with the
statement and its parameters."""

import socket

import pymysql
import pytest
import requests
from sqlalchemy.exc import OperationalError, ProgrammingError

from harness.processes import free_port
from order_pipeline.scrub import Scrubber, scrub

HOST = socket.gethostname()
FEED_URL = f"http://feed-user:feed-secret@{HOST}:{free_port()}/price?token=tok-abcdef"
CONFIG = {
    "AMQP_URI": "amqp://svc:broker-secret@rabbit-1.internal:5672/v;amqp://svc:broker-secret@rabbit-2:5672/v",
    "DB_URI": f"mysql+pymysql://orders:db-secret@mariadb:{free_port()}/orders",
    "PRICE_FEED_URL": FEED_URL,
    "GATEWAY_TOKEN": "gateway-token-0123456789",
    "MAX_WORKERS": 10,
}
# What must never be left, whatever the text.
NEVER = [
    "feed-user",
    "feed-secret",
    "tok-abcdef",
    "broker-secret",
    "db-secret",
    "gateway-token-0123456789",
    "rabbit-1.internal",
    "rabbit-2",
    "mariadb",
    "127.0.0.1",
    "://",
    "SELECT",
    "no_such_table WHERE",
]


def failure_text(call):
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("it did not fail")


def sqlalchemy_error(error_class, code, message, statement, params=None):
    """The error SQLAlchemy raises for a server error, as it renders it."""
    original = getattr(pymysql.err, error_class.__name__)(code, message)
    return failure_text(lambda: _raise(error_class(statement, params, original)))


def _raise(exc):
    raise exc


def real_errors():
    return {
        "price feed": failure_text(lambda: requests.get(FEED_URL, timeout=2)),
        "feed as the processor says it": (
            f"price feed {FEED_URL} failed: "
            + failure_text(lambda: requests.get(FEED_URL, timeout=2))
        ),
        "database host": failure_text(
            lambda: pymysql.connect(host=HOST, port=free_port(), connect_timeout=2)
        ),
        "database address": failure_text(
            lambda: pymysql.connect(host="127.0.0.1", port=free_port(), connect_timeout=2)
        ),
        "database account": sqlalchemy_error(
            OperationalError,
            1045,
            "Access denied for user 'orders'@'10.1.2.3' (using password: YES)",
            "SELECT 1",
        ),
        "statement": sqlalchemy_error(
            ProgrammingError,
            1146,
            "Table 'orders.no_such_table' doesn't exist",
            "SELECT secret FROM no_such_table WHERE id = %(id)s",
            {"id": 5},
        ),
        "syntax": sqlalchemy_error(
            ProgrammingError,
            1064,
            "You have an error in your SQL syntax; check the manual that corresponds to your "
            "MariaDB server version for the right syntax to use near "
            "'SELEC secret FROM no_such_table WHERE 1' at line 1",
            "SELEC secret FROM no_such_table WHERE 1",
        ),
    }


@pytest.fixture(scope="module")
def errors():
    return real_errors()


@pytest.mark.parametrize(
    "kind",
    [
        "price feed",
        "feed as the processor says it",
        "database host",
        "database address",
        "database account",
        "statement",
        "syntax",
    ],
)
def test_what_real_libraries_say_leaves_nothing_to_reach_or_read(errors, kind):
    text = errors[kind]
    scrubbed = Scrubber.for_config(CONFIG)(text)
    for secret in [*NEVER, f"'{HOST}'"]:
        assert secret not in scrubbed, (secret, scrubbed)
    assert Scrubber.for_config(CONFIG)(scrubbed) == scrubbed  # a second pass changes nothing


def test_the_shape_of_the_error_is_kept(errors):
    scrub_ = Scrubber.for_config(CONFIG)
    assert scrub_(errors["database address"]).startswith(
        "OperationalError: (2003, \"Can't connect to MySQL server on '<address>' ([Errno 111] "
    )
    statement = scrub_(errors["statement"])
    assert statement.startswith("ProgrammingError: (1146, ")
    assert "[parameters" not in statement and "Background on this error" not in statement
    assert "near <sql> at line 1" in scrub_(errors["syntax"])
    assert "Failed to establish a new connection: [Errno 111]" in scrub_(errors["price feed"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("order 42 does not exist", "order 42 does not exist"),
        (
            "cannot reach amqp://u:p@broker.internal:5672/v",
            "cannot reach <url>",
        ),
        ("login svc:hunter22@10.0.0.7:3306", "login <credentials>@<address>:3306"),
        ("Authorization: Bearer abc.DEF-123", "Authorization: Bearer <secret>"),
        ("GET /price?api_key=abc&x=1", "GET /price?api_key=<secret>&x=1"),
        ("node [fe80::1%eth0]:5672 or ::1 or 2001:db8::ff00:42:8329", None),
        ("at 10:00:00.123 then 11:59:59", "at 10:00:00.123 then 11:59:59"),
        ("Access denied for user 'orders'@'db.internal'", "Access denied for user <account>"),
        ("no such host prices.example.com (db-1.svc.cluster.local)", None),
        ("read config.yml and processor_service/processing.py", None),
        ("localhost refused; LOCALHOST too", "<host> refused; <host> too"),
        ("(pymysql.err.OperationalError) (2013, 'Lost')", "(2013, 'Lost')"),
        ("sqlalchemy.exc.OperationalError: lost", "sqlalchemy.exc.OperationalError: lost"),
    ],
)
def test_each_kind_of_leak(text, expected):
    scrubbed = scrub(text)
    if expected is not None:
        assert scrubbed == expected
    assert "fe80" not in scrubbed and "2001:db8" not in scrubbed and "::1" not in scrubbed
    assert "example.com" not in scrubbed and "cluster.local" not in scrubbed
    assert scrub(scrubbed) == scrubbed


def test_file_names_are_not_host_names():
    assert scrub("read config.yml and processor_service/processing.py") == (
        "read config.yml and processor_service/processing.py"
    )


def test_this_machine_is_known_by_name():
    assert scrub(f"cannot connect to {HOST}:5672") == "cannot connect to <host>:5672"


def test_known_words_that_are_also_placeholders_do_not_nest():
    scrub_ = Scrubber(known_hosts=["host", "sql"], known_secrets=["secret", "address"])
    once = scrub_("secret at host, address 10.0.0.1, SELECT 1")
    assert once == "<secret> at <host>, <secret> <address>, <sql>"
    assert scrub_(once) == once

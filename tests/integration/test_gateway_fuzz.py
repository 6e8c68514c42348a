"""Generated requests against a real gateway with every service up.

Whatever the method, path, query string, headers or body, the gateway
answers with JSON (but for a GET or HEAD of the console's page and files),
never a 5xx, never a traceback or an internal name, and is still healthy
afterwards. (`GET /events` never ends; tests/integration/test_console_stream.py
covers it.) Requests go out through http.client, which
sends the path, headers and body as given (requests would normalise them).

Each property runs FUZZ_EXAMPLES generated requests (200 by default; set
the environment variable for a longer hunt).
"""

import http.client
import json
import os
import string
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ERRORS, HTTP_CODES, INTERNAL_ERROR
from harness.processes import TEST_TOKEN
from order_contract import MAX_ORDER_ID
from tests.support.services import LEAKS, MAX_REQUEST_BYTES, InProcessServices

ERROR_CODES = {code for _, code in ERRORS.values()} | set(HTTP_CODES.values()) | {INTERNAL_ERROR[1]}
ROUTES = [
    "/start",
    "/stop",
    "/status",
    "/metrics",
    "/health",
    "/openapi.json",
    "/orders/1",
    "/dead-letters",
    "/dead-letters/replay",
    "/dead-letters/discard",
    "/dead-letters/groups",
    "/dead-letters/groups/0123456789abcdef/replay",
    "/dead-letters/audit",
    "/dead-letters/0123456789abcdef",
    "/dead-letters/0123456789abcdef/edit",
    "/",
    "/console/console.js",
]
# GET or HEAD of these answers the console's files, not JSON.
CONSOLE_FILES = {
    "/": "text/html; charset=utf-8",
    "/console/console.js": "text/javascript; charset=utf-8",
    "/console/console.css": "text/css; charset=utf-8",
}
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- what to send ------------------------------------------------------------------

token_chars = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Printable ASCII that may appear raw in a request target (no space, no '#').
raw_path_chars = "".join(c for c in map(chr, range(33, 127)) if c not in "#?")
header_value_chars = st.characters(codec="latin-1", exclude_characters="\r\n")

methods = st.one_of(
    st.sampled_from(
        [
            "GET",
            "POST",
            "PUT",
            "DELETE",
            "PATCH",
            "HEAD",
            "OPTIONS",
            "TRACE",
            "CONNECT",
            "PROPFIND",
            "get",
            "Post",
        ]
    ),
    st.text(token_chars, min_size=1, max_size=12),
)

order_segments = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=MAX_ORDER_ID - 5, max_value=MAX_ORDER_ID + 5).map(str),
    st.text(max_size=40).map(lambda text: quote(text, safe="")),
    st.text(raw_path_chars, max_size=40),
    st.text("0123456789", min_size=15, max_size=3000),
    st.binary(max_size=20).map(lambda raw: "".join(f"%{b:02X}" for b in raw)),
    st.sampled_from(
        [
            "\u0661",
            "\uff11",
            "\u00b2",
            "1\u200b",
            "%",
            "%2",
            "%zz",
            "%00",
            "..",
            ".",
            "%2e%2e",
            "1;x=1",
            "1%2F2",
        ]
    ).map(lambda t: quote(t, safe="%;.")),
)

paths = st.one_of(
    st.sampled_from(ROUTES),
    order_segments.map(lambda segment: "/orders/" + segment),
    st.lists(
        st.sampled_from(
            [
                "orders",
                "status",
                "start",
                "stop",
                "health",
                "metrics",
                "dead-letters",
                "replay",
                "console",
                "",
                ".",
                "..",
                "1",
                "%2F",
                "openapi.json",
            ]
        ),
        max_size=5,
    ).map(lambda parts: "/" + "/".join(parts)),
    st.text(max_size=60).map(lambda text: "/" + quote(text, safe="/")),
    st.text(raw_path_chars, max_size=60).map(lambda text: "/" + text),
)

queries = st.one_of(
    st.just(""),
    st.text(raw_path_chars + "?", max_size=200).map(lambda text: "?" + text),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4).map(
        lambda pairs: "?" + "&".join(quote(k) + "=" + quote(v) for k, v in pairs.items())
    ),
)

authorizations = st.one_of(
    st.none(),
    st.just("Bearer " + TEST_TOKEN),
    st.text(header_value_chars, max_size=50).map(lambda text: "Bearer " + text),
    st.text(header_value_chars, max_size=100),
    st.sampled_from(
        [
            "Bearer",
            "bearer  ",
            "Basic Zm9vOmJhcg==",
            "Bearer " + TEST_TOKEN + "x",
            "Bearer " + TEST_TOKEN.upper(),
            "Bearer\t" + TEST_TOKEN,
        ]
    ),
)

extra_headers = st.dictionaries(
    st.one_of(
        st.text(token_chars, min_size=1, max_size=20),
        st.sampled_from(
            [
                "Content-Type",
                "Content-Length",
                "Transfer-Encoding",
                "Expect",
                "Host",
                "Connection",
                "Accept",
                "X-Forwarded-For",
                "Cookie",
                "Content-Encoding",
                "Range",
            ]
        ),
    ),
    st.one_of(
        st.text(header_value_chars, max_size=60),
        st.sampled_from(
            [
                "chunked",
                "gzip",
                "100-continue",
                "close",
                "-1",
                "abc",
                "99999999999999999999",
                "application/json",
                "0",
                "\u00ff",
            ]
        ),
    ),
    max_size=4,
)

bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda text: text.encode("utf-8")),
    st.integers(MAX_REQUEST_BYTES - 2, 3 * MAX_REQUEST_BYTES).map(lambda n: b"x" * n),
    # Refused unread, then drained (up to 1 MiB) so the client sees the 413.
    st.just(b"x" * 1_000_000),
)


# --- how to send it ------------------------------------------------------------------


def send(port, method, target, headers, body):
    """(status, headers, body bytes); http.client sends everything as given."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value.encode("latin-1"))
        if body is not None and not any(n.lower() == "content-length" for n, _ in headers):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def assert_clean_json(method, status, headers, body):
    assert status < 500, (status, body)
    assert headers["Content-Type"] == "application/json", headers
    if method.upper() == "HEAD":
        return None
    text = body.decode("utf-8")
    document = json.loads(text)
    if status >= 400:
        assert LEAKS.search(text) is None, text
        assert set(document) == {"error", "message"}, document
        assert document["error"] in ERROR_CODES, document
    if status == 405:
        assert headers["Allow"], headers
    return document


@pytest.fixture(scope="module")
def gateway(make_database, make_vhost):
    # Generated POST /start requests may turn generation on: keep it slow.
    # Any answer may take a while on a busy machine: a 503 from an RPC
    # timeout would read as a server error.
    with InProcessServices(
        make_database(), make_vhost(), ORDER_INTERVAL_SECONDS=2, RPC_TIMEOUT_SECONDS=5
    ) as services:
        yield services.start("generator", "processor", "gateway")


# --- the properties -----------------------------------------------------------------


@FUZZ
@given(
    method=methods,
    path=paths,
    query=queries,
    authorization=authorizations,
    headers=extra_headers,
    body=bodies,
)
def test_any_request_gets_a_clean_json_answer(
    gateway, method, path, query, authorization, headers, body
):
    header_list = list(headers.items())
    if authorization is not None:
        header_list.append(("Authorization", authorization))
    status, response_headers, response_body = send(
        gateway.port, method, path + query, header_list, body
    )
    # The path is served percent-decoded ("/%2F" is "//"), and Python's
    # http.server (under eventlet's) reads "//x" as "/x" (an open-redirect
    # guard); werkzeug reads the method case-insensitively.
    served = unquote(path)
    served = "/" + served.lstrip("/") if served.startswith("//") else served
    if status == 200 and served in CONSOLE_FILES and method.upper() in ("GET", "HEAD"):
        assert response_headers["Content-Type"] == CONSOLE_FILES[served]
        return
    assert_clean_json(method, status, response_headers, response_body)
    if status == 200 and path in (
        "/start",
        "/stop",
        "/dead-letters/replay",
        "/dead-letters/discard",
    ):
        assert authorization is not None and TEST_TOKEN in authorization


@FUZZ
@given(
    order_id=st.one_of(
        st.integers(min_value=-(10**25), max_value=10**25),
        st.integers(min_value=MAX_ORDER_ID - 3, max_value=MAX_ORDER_ID + 3),
        st.integers(min_value=0, max_value=3),
    )
)
def test_an_order_id_is_found_missing_or_bad_by_its_value(gateway, order_id):
    status, headers, body = send(gateway.port, "GET", f"/orders/{order_id}", [], None)
    document = assert_clean_json("GET", status, headers, body)
    if 1 <= order_id <= MAX_ORDER_ID:
        assert status == 404 or (status == 200 and document["id"] == order_id), document
    elif order_id < 0:
        assert status == 400, document
        assert document["message"] == "order id must be a positive integer", document
    else:
        assert status == 400, document
        assert document["message"] == f"order id must be between 1 and {MAX_ORDER_ID}", document


@FUZZ
@given(authorization=authorizations, path=st.sampled_from(["/start", "/stop"]))
def test_control_needs_exactly_the_token(gateway, authorization, path):
    header_list = [] if authorization is None else [("Authorization", authorization)]
    status, headers, body = send(gateway.port, "POST", path, header_list, None)
    document = assert_clean_json("POST", status, headers, body)
    # RFC 7235: `Bearer` SP token; the server drops the value's outer spaces/tabs.
    scheme, _, credentials = (authorization or "").strip(" \t").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip(" \t"):
        assert status == 401, document
    elif credentials.strip(" \t") == TEST_TOKEN:
        assert status == 200, document
    else:
        assert status == 401, document


def test_the_gateway_is_still_healthy_afterwards(gateway):
    status, headers, body = send(gateway.port, "GET", "/health", [], None)
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"

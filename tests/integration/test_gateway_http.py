"""The gateway over real HTTP, with the real services behind it.

The three services run in this process as nameko containers (on the real
RabbitMQ and MariaDB, in the test's own vhost and database), each started
and stopped on its own, so a test can take one away. Every response any
test receives goes through `json_body`, which fails the test on a body that
is not JSON or that shows a traceback, SQL, a host name or an exception's
module path. That harness is tests/support/services.py.
"""

import json
import socket
import time
from decimal import Decimal

import eventlet
import pytest
import requests
from eventlet import wsgi

from gateway.openapi import openapi_document
from harness.processes import TEST_TOKEN, free_port, wait_until
from harness.tables import order_count, outbox_size, processed_count, sql_metrics
from tests.support.openapi import response_schema, schema_violations
from tests.support.prometheus import PROMETHEUS_ACCEPT, TEXT_ACCEPT, exposition_samples
from tests.support.services import (
    INTERVAL,
    LEAKS,
    MAX_REQUEST_BYTES,
    PATIENT_RPC_TIMEOUT,
    RPC_TIMEOUT,
    InProcessServices,
    json_body,
    wait_for_ticks,
    wait_processed,
)


def raw_request(port, data, timeout=5):
    """Send raw bytes; (status, headers, body) of the reply, read to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(status_line.split()[1]), headers, body


def assert_error(response, body, status, code):
    assert (response.status_code, body["error"]) == (status, code), body


def assert_documented(path, method, response, body):
    """The response fits what gateway/openapi.yaml says for its status."""
    document = openapi_document()
    schema = response_schema(document, path, method, response.status_code)
    assert schema_violations(document, schema, body) == []


# Tests that wait for the gateway to give up use the harness's short RPC
# timeout (RPC_TIMEOUT); the others PATIENT_RPC_TIMEOUT.
# How much later than RPC_TIMEOUT a 503 may come on a busy machine. A gateway
# that waited for a missing service would not answer before the client's own
# 10 s timeout.
ANSWER_SLACK = 5


def create_orders(services, quantities):
    with services.rpc() as rpc:
        return [rpc.order_generator.create_order(quantity) for quantity in quantities]


@pytest.fixture(scope="module")
def system(make_database, make_vhost):
    """All three services, up for the whole module."""
    with InProcessServices(
        make_database(), make_vhost(), RPC_TIMEOUT_SECONDS=PATIENT_RPC_TIMEOUT
    ) as services:
        yield services.start("generator", "processor", "gateway")


@pytest.fixture
def turns_generation_on(system):
    """For a test that turns generation on: the module's services are
    shared, so it is turned off again after the test, however it ended."""
    try:
        yield
    finally:
        system.post("/stop")


# --- not found, bad ids, wrong methods ----------------------------------------


def test_an_unknown_order_is_a_404(system):
    response, body = system.get("/orders/987654321")
    assert_error(response, body, 404, "NOT_FOUND")
    assert "987654321" in body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/orders/",
        "/orders/1/",
        "/orders/1/extra",
        "/orders//1",
        "/status/",
        "/STATUS",
        "/orders/%2F1",
        "/%00",
        "/index.html",
        "/console",
        "/console/",
        "/console/index.html",
        "/console/..%2Fopenapi.yaml",
        "/events/",
        "/dead-letters/",
        "/orders/1%2Fprocessing",
    ],
)
def test_unknown_paths_are_404(system, path):
    response, body = system.get(path)
    assert_error(response, body, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "order_id",
    [
        "0",
        "00",
        "-1",
        "abc",
        "1.5",
        "1e3",
        "+1",
        "%201",
        "1%20",
        "0x10",
        "1_000",
        "1%00",
        str(2**63),
        "9" * 30,
        "9" * 5000,
        "%D9%A1%D9%A2",
        "%C2%B2",
        "%EF%BC%91",
        "%FF",
        "%E2%80%8B1",
    ],
)
def test_malformed_negative_zero_huge_and_non_ascii_ids_are_400(system, order_id):
    response, body = system.get("/orders/" + order_id)
    assert_error(response, body, 400, "BAD_REQUEST")
    assert_documented("/orders/{order_id}", "get", response, body)


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", "/start", {"POST"}),
        ("PUT", "/stop", {"POST"}),
        ("DELETE", "/stop", {"POST"}),
        ("POST", "/status", {"GET", "HEAD"}),
        ("DELETE", "/orders/1", {"GET", "HEAD"}),
        ("GET", "/orders", {"POST"}),
        ("PATCH", "/metrics", {"GET", "HEAD"}),
        ("OPTIONS", "/health", {"GET", "HEAD"}),
        ("POST", "/openapi.json", {"GET", "HEAD"}),
        ("BREW", "/status", {"GET", "HEAD"}),
    ],
)
def test_a_wrong_method_is_405_with_allow(system, method, path, allowed):
    response, body = system.request(method, path)
    assert_error(response, body, 405, "METHOD_NOT_ALLOWED")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_head_is_answered_like_get_without_a_body(system):
    response, _ = system.request("HEAD", "/status")
    assert response.status_code == 200
    response, _ = system.request("HEAD", "/orders/987654321")
    assert response.status_code == 404


def test_answers_like_404_and_401_are_not_logged_as_failed_workers(system, caplog):
    system.get("/orders/987654321")
    system.get("/orders/abc")
    system.post("/start", token="wrong")
    system.post("/start", token=None)
    failures = [
        record
        for record in caplog.records
        if record.exc_info or "error handling worker" in record.getMessage()
    ]
    assert failures == []


# --- bodies and query strings ---------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/stop"),
        ("GET", "/status"),
        ("GET", "/nowhere"),
        ("PUT", "/start"),
    ],
)
@pytest.mark.usefixtures("turns_generation_on")
def test_a_body_over_the_limit_is_413_on_any_path(system, method, path):
    system.post("/start")
    response, body = system.request(
        method, path, token=TEST_TOKEN, data=b"x" * (MAX_REQUEST_BYTES + 1)
    )
    assert_error(response, body, 413, "PAYLOAD_TOO_LARGE")
    # The refused request did nothing, and the gateway still answers.
    _, status = system.get("/status")
    assert status["running"] is True


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(system):
    status, headers, body = raw_request(
        system.port, b"POST /stop HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n"
    )
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "PAYLOAD_TOO_LARGE"


def test_a_body_at_the_limit_is_accepted_and_ignored(system):
    response, body = system.post("/stop", data=b"x" * MAX_REQUEST_BYTES)
    assert response.status_code == 200 and body["running"] is False


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b"\xff\xfe\x00not json", "application/json"),
        (b'{"running": true', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"a=1&b=2", "application/x-www-form-urlencoded"),
        (
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--',
            "multipart/form-data; boundary=x",
        ),
        (b"--broken", "multipart/form-data"),
    ],
)
def test_bodies_that_are_not_json_are_ignored(system, data, content_type):
    response, body = system.post("/stop", data=data, headers={"Content-Type": content_type})
    assert response.status_code == 200 and body["running"] is False
    response, body = system.get("/status", data=data, headers={"Content-Type": content_type})
    assert response.status_code == 200


def test_a_chunked_body_is_ignored_and_the_connection_closed(system):
    response, body = system.post("/stop", data=iter([b"x" * 3000] * 5))
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 200 and body["running"] is False
    assert response.headers["Connection"] == "close"


@pytest.mark.parametrize(
    "query",
    [
        "?",
        "?a",
        "?%ZZ=1",
        "?a=%FF%FE",
        "?&&&=&",
        "?id=1&id=2",
        "?a=" + "x" * 4000,
        "?%00=%00",
        "?a[b][c]=1",
        "?;;",
        "?\u00e9=\u00e9",
    ],
)
def test_junk_query_strings_are_ignored(system, query):
    response, body = system.get("/status" + query)
    assert response.status_code == 200 and set(body) == {
        "running",
        "interval_seconds",
        "orders_created",
    }
    response, body = system.get("/orders/987654321" + query)
    assert_error(response, body, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (b"POST /stop HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "BAD_REQUEST"),
        (b"POST /stop HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "BAD_REQUEST"),
        (
            b"POST /stop HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
            "BAD_REQUEST",
        ),
        (
            b"POST /stop HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "BAD_REQUEST",
        ),
        (b"POST /stop HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "BAD_REQUEST"),
        (b"HELLO\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET /status HTTP/1.1 extra\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET /status HTTP/x.y\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET /status HTTP/2.0\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
        (
            b"GET /status HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
        (
            b"GET /status HTTP/1.1\r\n" + b"X-Many: aaaaaaaaaaaaaaaa\r\n" * 150 + b"\r\n",
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
    ],
)
def test_requests_the_server_cannot_frame_are_refused_in_json(system, request_bytes, status, code):
    got_status, headers, body = raw_request(system.port, request_bytes)
    assert got_status == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert json.loads(body)["error"] == code
    assert not LEAKS.search(body.decode())
    response, _ = system.get("/health")
    assert response.status_code == 200


def test_a_client_that_hangs_up_early_does_not_hurt_the_gateway(system):
    for data in (
        b"GET /status HTTP/1.1\r\n",
        b"POST /stop HTTP/1.1\r\nContent-Length: 100\r\n\r\nab",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello
        b"",
    ):
        with socket.create_connection(("127.0.0.1", system.port), timeout=5) as sock:
            sock.sendall(data)
    response, _ = system.get("/health")
    assert response.status_code == 200


START_WITH_TOKEN = f"POST /start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TEST_TOKEN}".encode()


@pytest.mark.parametrize(
    "data",
    [
        START_WITH_TOKEN + b"\r\n",  # the blank line never came
        START_WITH_TOKEN,  # cut inside a header line
        b"POST /start HTTP/1.1",  # cut inside the request line
    ],
)
def test_a_request_cut_short_by_the_client_is_never_handled(system, data):
    system.post("/stop")
    with socket.create_connection(("127.0.0.1", system.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # the end of the stream, as when the client closes
        assert sock.recv(65536) == b""  # nobody to answer: closed without a word
    assert system.get("/status")[1]["running"] is False


HEADER_TIMEOUT = 1.0


def read_response(sock):
    """(status, JSON body) of one response with a Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ).split(b":")[1]
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_a_request_whose_head_does_not_arrive_in_time_is_closed(system):
    port = free_port()
    system.start_as(
        "impatient gateway",
        "gateway",
        HEADER_TIMEOUT_SECONDS=HEADER_TIMEOUT,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
    )
    try:
        system.post("/stop")
        # A request line and headers, but not the blank line: a 408, unhandled.
        started = time.monotonic()
        status, headers, body = raw_request(port, START_WITH_TOKEN + b"\r\n", timeout=10)
        assert (status, json.loads(body)["error"]) == (408, "REQUEST_TIMEOUT")
        assert headers["connection"] == "close"
        assert HEADER_TIMEOUT <= time.monotonic() - started < 10
        assert system.get("/status")[1]["running"] is False
        # Nothing at all: closed without a word.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert sock.recv(65536) == b""
        # A complete request is answered, and the connection, kept alive,
        # is closed once it has been idle for the time limit.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
            assert sock.recv(65536) == b""
    finally:
        system.stop("impatient gateway")


# --- the control token ----------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer    ",
        "Basic dGVzdDp0b2tlbg==",
        TEST_TOKEN,
        "Token " + TEST_TOKEN,
        "Bearer" + TEST_TOKEN,
    ],
)
def test_control_without_a_bearer_token_is_401_and_changes_nothing(system, authorization):
    system.post("/stop")
    headers = {} if authorization is None else {"Authorization": authorization}
    response, body = system.post("/start", token=None, headers=headers)
    assert_error(response, body, 401, "UNAUTHORIZED")
    assert_documented("/start", "post", response, body)
    assert system.get("/status")[1]["running"] is False


@pytest.mark.parametrize(
    "token",
    [
        "wrong",
        TEST_TOKEN.upper(),
        TEST_TOKEN + "x",
        TEST_TOKEN[:-1],
        "x" * 2000,
        TEST_TOKEN + " extra",
    ],
)
@pytest.mark.usefixtures("turns_generation_on")
def test_control_with_a_wrong_token_is_401_and_changes_nothing(system, token):
    system.post("/start")
    response, body = system.post("/stop", token=token)
    assert_error(response, body, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert system.get("/status")[1]["running"] is True


def test_control_is_403_when_no_token_is_configured(system):
    port = free_port()
    system.start_as(
        "tokenless gateway", "gateway", GATEWAY_TOKEN="", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        system.post("/stop")
        for authorization in ("Bearer " + TEST_TOKEN, "Bearer ", "Bearer x", None):
            headers = {} if authorization is None else {"Authorization": authorization}
            response = requests.post(url + "/start", headers=headers, timeout=10)
            body = json_body(response)
            assert (response.status_code, body["error"]) == (403, "FORBIDDEN")
            assert "GATEWAY_TOKEN" in body["message"]
        response = requests.get(url + "/status", timeout=10)
        assert response.status_code == 200 and json_body(response)["running"] is False
    finally:
        system.stop("tokenless gateway")


def orders_created(system):
    response, body = system.get("/status")
    assert response.status_code == 200
    return body["orders_created"]


@pytest.mark.usefixtures("turns_generation_on")
def test_the_right_token_stops_and_starts_generation(system):
    response, body = system.post("/start")
    assert response.status_code == 200 and body["running"] is True
    assert_documented("/start", "post", response, body)
    before = orders_created(system)
    wait_until(lambda: orders_created(system) >= before + 3, 10, message="orders generated")

    response, body = system.post("/stop")
    assert response.status_code == 200 and body["running"] is False
    stopped_at = orders_created(system)
    in_database = order_count(system.db_uri)
    wait_for_ticks(system)  # each would have created an order, were generation on
    assert orders_created(system) == stopped_at
    assert order_count(system.db_uri) == in_database
    assert system.get("/status")[1]["running"] is False

    response, body = system.post("/start")
    assert response.status_code == 200 and body["running"] is True
    wait_until(lambda: orders_created(system) >= stopped_at + 2, 10, message="orders generated")


# --- POST /orders -----------------------------------------------------------------


def orders_in_database(system):
    return order_count(system.db_uri)


def test_post_orders_creates_an_order_that_gets_processed(system):
    response, body = system.post("/orders", json={"quantity": 6})
    assert response.status_code == 201, body
    assert_documented("/orders", "post", response, body)
    assert body["quantity"] == 6
    assert response.headers["Location"] == f"/orders/{body['id']}"
    wait_until(
        lambda: system.get(response.headers["Location"])[1]["processing"] is not None,
        30,
        message="the posted order processed",
    )
    response, fetched = system.get(response.headers["Location"])
    assert {key: fetched[key] for key in body} == body


def test_post_orders_with_an_idempotency_key_creates_once(system):
    headers = {"Idempotency-Key": "test-key-7f3a"}
    first, created = system.post("/orders", json={"quantity": 2}, headers=dict(headers))
    assert first.status_code == 201
    before = orders_in_database(system)
    again, repeated = system.post("/orders", json={"quantity": 2}, headers=dict(headers))
    assert again.status_code == 200
    assert_documented("/orders", "post", again, repeated)
    assert repeated == created and again.headers["Location"] == first.headers["Location"]
    assert orders_in_database(system) == before
    other, body = system.post("/orders", json={"quantity": 2}, headers={"Idempotency-Key": "k2"})
    assert other.status_code == 201 and body["id"] != created["id"]


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (b'{"quantity": 0}', {}),
        (b'{"quantity": "5"}', {}),
        (b'{"quantity": 5.0}', {}),
        (b'{"quantity": true}', {}),
        (b'{"quantity": 1000001}', {}),
        (b'{"quantity": 5, "price": 1}', {}),
        (b"{}", {}),
        (b"[5]", {}),
        (b"", {}),
        (b"quantity=5", {}),
        (b"\xff\xfe", {}),
        (b'{"quantity": 5}', {"Idempotency-Key": ""}),
        (b'{"quantity": 5}', {"Idempotency-Key": "x" * 256}),
    ],
    ids=repr,
)
def test_post_orders_with_a_bad_body_or_key_is_400_and_creates_nothing(system, data, headers):
    before = orders_in_database(system)
    response, body = system.post(
        "/orders", data=data, headers={"Content-Type": "application/json", **headers}
    )
    assert_error(response, body, 400, "BAD_REQUEST")
    assert_documented("/orders", "post", response, body)
    assert orders_in_database(system) == before


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 401)])
def test_post_orders_without_the_token_creates_nothing(system, token, status):
    before = orders_in_database(system)
    response, body = system.post("/orders", token=token, json={"quantity": 5})
    assert response.status_code == status
    assert orders_in_database(system) == before


# --- orders, metrics, health -------------------------------------------------------


def test_metrics_match_the_tables(system):
    system.post("/stop")
    create_orders(system, [1, 7, 33])
    wait_processed(system)
    response, body = system.get("/metrics")
    assert response.status_code == 200
    assert body == sql_metrics(system.db_uri)
    assert body["total_orders_processed"] >= 3
    assert isinstance(body["average_execution_price"], str)
    assert Decimal(body["average_execution_price"]) > 0
    assert_documented("/metrics", "get", response, body)


@pytest.mark.parametrize(
    "accept, content_type",
    [
        (TEXT_ACCEPT, "text/plain; version=0.0.4; charset=utf-8"),
        (PROMETHEUS_ACCEPT, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    ],
)
def test_metrics_for_prometheus_are_what_the_tables_and_the_broker_say(
    system, accept, content_type
):
    system.post("/stop")
    create_orders(system, [2, 5])
    wait_processed(system)
    response = requests.get(system.base_url + "/metrics", headers={"Accept": accept}, timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (200, content_type)
    assert response.headers["Vary"] == "Accept"
    assert not LEAKS.search(response.text), response.text
    values = exposition_samples(response)
    processed = processed_count(system.db_uri)
    assert processed >= 2
    assert values["order_pipeline_orders_processed_total"] == processed
    assert values["order_pipeline_end_to_end_latency_seconds_count"] == processed
    assert values['order_pipeline_end_to_end_latency_seconds_bucket{le="+Inf"}'] == processed
    assert values["order_pipeline_orders_created_total"] == order_count(system.db_uri)
    assert values["order_pipeline_outbox_backlog"] == outbox_size(system.db_uri)
    average = Decimal(sql_metrics(system.db_uri)["average_execution_price"])
    assert values["order_pipeline_average_execution_price"] == float(average)
    assert values["order_pipeline_generator_running"] == 0
    assert values["order_pipeline_generator_interval_seconds"] == INTERVAL
    assert values["order_pipeline_event_queue_consumers"] == 1
    assert values["order_pipeline_event_queue_depth"] == 0
    assert values["order_pipeline_dead_letter_queue_depth"] == 0
    assert values["order_pipeline_orders_retried_total"] == 0
    assert values["order_pipeline_orders_dead_lettered_total"] == 0
    for component in ("generator", "processor", "broker"):
        assert values[f'order_pipeline_component_up{{component="{component}"}}'] == 1


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "text/html,application/xhtml+xml,*/*;q=0.8", "image/png"],
)
def test_any_other_metrics_request_gets_the_json_as_before(system, accept):
    headers = {} if accept is None else {"Accept": accept}
    response, body = system.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert body == sql_metrics(system.db_uri)
    assert_documented("/metrics", "get", response, body)


def test_head_metrics_for_prometheus_has_its_headers_and_no_body(system):
    response = requests.head(
        system.base_url + "/metrics", headers={"Accept": TEXT_ACCEPT}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.content == b""


def test_a_processed_order_has_its_processing_result(system):
    (order,) = create_orders(system, [12])
    wait_processed(system)
    response, body = system.get("/orders/{}".format(order["id"]))
    assert response.status_code == 200
    assert_documented("/orders/{order_id}", "get", response, body)
    assert {key: body[key] for key in order} == order
    processing = body["processing"]
    assert processing["order_id"] == order["id"]
    assert Decimal(processing["execution_price"]) == (
        12 * Decimal(processing["unit_price"])
    ).quantize(Decimal("0.01"))


def test_health_and_status_and_openapi_are_documented_json(system):
    for path in ("/health", "/status"):
        response, body = system.get(path)
        assert response.status_code == 200
        assert_documented(path, "get", response, body)
    response, body = system.get("/openapi.json")
    assert response.status_code == 200 and body == openapi_document()


class PriceFeed:
    """A price feed on a free port that fails until `.price` is set."""

    def __init__(self):
        self.price = None
        self.requests = 0
        self.sock = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/price"
        self.thread = eventlet.spawn(wsgi.server, self.sock, self.answer, log_output=False)

    def answer(self, environ, start_response):
        self.requests += 1
        if self.price is None:
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"error": "no price yet"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"price": self.price}).encode()]

    def close(self):
        self.thread.kill()
        self.sock.close()


def test_an_order_shows_processing_null_until_it_is_processed(services):
    feed = PriceFeed()
    try:
        services.config.update(
            {
                "PRICE_SOURCE": "http",
                "PRICE_FEED_URL": feed.url,
                "RETRY_FIRST_DELAY_SECONDS": 0.2,
                "RETRY_MAX_DELAY_SECONDS": 0.4,
                "RPC_TIMEOUT_SECONDS": PATIENT_RPC_TIMEOUT,
            }
        )
        services.start("generator", "processor", "gateway")
        (order,) = create_orders(services, [3])
        wait_until(
            lambda: feed.requests >= 2,
            30,
            message="the processor trying, and failing, to price the order",
        )
        response, body = services.get("/orders/{}".format(order["id"]))
        assert response.status_code == 200
        assert body == {**order, "processing": None}
        assert_documented("/orders/{order_id}", "get", response, body)

        feed.price = "101.25"
        wait_processed(services)
        response, body = services.get("/orders/{}".format(order["id"]))
        assert response.status_code == 200
        assert_documented("/orders/{order_id}", "get", response, body)
        assert body["processing"]["unit_price"] == "101.2500"
        assert body["processing"]["execution_price"] == "303.75"
    finally:
        feed.close()


# --- a service that is not there ------------------------------------------------------


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def assert_unavailable(services, method, path, **kwargs):
    (response, body), elapsed = timed(services.request, method, path, **kwargs)
    assert_error(response, body, 503, "SERVICE_UNAVAILABLE")
    assert elapsed < RPC_TIMEOUT + ANSWER_SLACK, elapsed
    return body


def status_of(services, path):
    return services.get(path)[0].status_code


def wait_answering(services, path):
    """Wait for a 200 on `path` (right after a start, the first answers can
    take longer than the short RPC timeout)."""
    wait_until(lambda: status_of(services, path) == 200, 30, message="200 on " + path)


def test_503_when_the_generator_was_never_started(services):
    services.start("processor", "gateway")
    for method, path in (
        ("GET", "/status"),
        ("GET", "/orders/1"),
        ("POST", "/orders"),
        ("POST", "/stop"),
        ("POST", "/start"),
    ):
        body = assert_unavailable(services, method, path, token=TEST_TOKEN, json={"quantity": 1})
        assert "order_generator" in body["message"]
    response, body = services.get("/health")
    assert response.status_code == 503
    assert body == {
        "status": "degraded",
        "services": {"order_generator": "unavailable", "order_processor": "ok"},
    }
    assert_documented("/health", "get", response, body)
    wait_answering(services, "/metrics")


def test_503_within_the_timeout_when_a_running_service_stops(services):
    services.start("generator", "processor", "gateway")
    (order,) = create_orders(services, [5])
    wait_processed(services)
    wait_answering(services, "/health")

    services.stop("processor")
    assert_unavailable(services, "GET", "/metrics")
    assert_unavailable(services, "GET", "/orders/{}".format(order["id"]))
    response, body = services.get("/orders/987654321")
    assert response.status_code == 404  # known missing, whatever the processor says

    services.stop("generator")
    assert_unavailable(services, "GET", "/status")
    (response, body), elapsed = timed(services.get, "/health")
    assert response.status_code == 503
    assert body["services"] == {"order_generator": "unavailable", "order_processor": "unavailable"}
    # It waited for the services' answers, and then gave up. (That both are
    # asked at once, one timeout rather than two, is tests/unit's to show.)
    assert RPC_TIMEOUT * 0.9 <= elapsed < RPC_TIMEOUT + ANSWER_SLACK, elapsed

    services.start("generator", "processor")
    path = "/orders/{}".format(order["id"])
    wait_answering(services, path)
    response, body = services.get(path)
    assert response.status_code == 200 and body["processing"]["order_id"] == order["id"]

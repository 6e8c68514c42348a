"""The gateway's rules without a server: order ids, the bearer token, body
framing, the JSON refusals, the listening socket, and what the handlers make
of their services' answers (the services are mocks here; tests/integration
has the real ones)."""

import json
import socket
from email.parser import Parser
from http.client import HTTPMessage

import eventlet
import eventlet.event
import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory
from nameko.web.server import BindAddress
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.auth import bearer_token
from gateway.errors import BadRequest, Forbidden, Unauthorized
from gateway.http import response_for_error
from gateway.listen import listen
from gateway.openapi import openapi_document
from gateway.protocol import body_framing_error, raw_json_error
from gateway.service import GatewayService, parse_order_id
from gateway.settings import web_server_address
from gateway.shared_reads import SharedReads
from harness.processes import free_port
from order_pipeline.errors import StartupError
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable

MAX_ID = 2**63 - 1


@pytest.mark.parametrize(
    "text, order_id",
    [
        ("1", 1),
        ("42", 42),
        ("007", 7),
        (str(MAX_ID), MAX_ID),
    ],
)
def test_order_ids_are_plain_ascii_digits_in_range(text, order_id):
    assert parse_order_id(text) == order_id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "1e3",
        "0x1",
        "abc",
        "1_000",
        "\u0661\u0662",  # Arabic-Indic digits: isdigit() but not ASCII
        "\u00b2",
        "\uff11",  # superscript two, fullwidth one
    ],
)
def test_anything_but_ascii_digits_is_not_a_positive_integer(text):
    with pytest.raises(BadRequest) as error:
        parse_order_id(text)
    assert str(error.value) == "order id must be a positive integer"


@pytest.mark.parametrize("text", ["0", "00", str(MAX_ID + 1), "9" * 20, "9" * 5000])
def test_digits_out_of_range_are_told_the_range(text):
    with pytest.raises(BadRequest) as error:
        parse_order_id(text)
    assert str(error.value) == f"order id must be between 1 and {MAX_ID}"


def test_leading_zeros_do_not_count_towards_the_range():
    assert parse_order_id("0" * 30 + "7") == 7


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("abc", None),
        ("Token abc", None),
        ("Bearer\tabc", None),
        ("\tBearer abc\t", "abc"),
        ("Bearer abc\xa0", "abc\xa0"),
        ("Bearer \u2003", "\u2003"),
    ],
)
def test_bearer_token_is_read_from_the_authorization_header(header, token):
    assert bearer_token(header) == token


def gateway_worker():
    """The gateway with mocked RPC proxies; reads are not shared here
    (SharedReads is tested on its own below)."""
    return worker_factory(GatewayService, shared_read=lambda key, call: call())


def headers(*lines):
    return Parser(_class=HTTPMessage).parsestr("".join(line + "\r\n" for line in lines) + "\r\n")


@pytest.mark.parametrize(
    "lines, refused",
    [
        ((), None),
        (("Content-Length: 0",), None),
        (("Content-Length: 100",), None),
        (("Content-Length: 100", "Content-Length: 100"), None),
        (("Transfer-Encoding: chunked",), None),
        (("Transfer-Encoding: Chunked ",), None),
        (("Content-Length: 101",), 413),
        (("Content-Length: 99999999999999999999999",), 413),
        (("Content-Length: -1",), 400),
        (("Content-Length: +5",), 400),
        (("Content-Length: 1_0",), 400),
        (("Content-Length: abc",), 400),
        (("Content-Length: ",), 400),
        (("Content-Length: \u0661",), 400),
        (("Content-Length: 5", "Content-Length: 6"), 400),
        (("Content-Length: 5", "Transfer-Encoding: chunked"), 400),
        (("Transfer-Encoding: gzip",), 400),
        (("Transfer-Encoding: gzip, chunked",), 400),
        (("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), 400),
    ],
)
def test_request_body_framing(lines, refused):
    problem = body_framing_error(headers(*lines), max_request_bytes=100)
    assert (problem and problem[0]) == refused


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("ascii").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return status_line, fields, body


def test_refusals_before_routing_are_complete_json_responses():
    status_line, fields, body = split_response(raw_json_error(414, "request line too long"))
    assert status_line == "HTTP/1.0 414 Request-URI Too Long"
    assert fields["Content-Type"] == "application/json"
    assert fields["Connection"] == "close"
    assert int(fields["Content-Length"]) == len(body)
    assert json.loads(body) == {"error": "URI_TOO_LONG", "message": "request line too long"}


def test_a_refused_head_request_gets_the_headers_only():
    raw = raw_json_error(400, "bad", head_only=True)
    status_line, fields, body = split_response(raw)
    assert status_line.startswith("HTTP/1.0 400 ") and body == b""
    assert int(fields["Content-Length"]) > 0


class Meeting:
    """Fake calls that answer only once `parties` of them are under way at
    the same time. Made one after another, the first never meets the next
    and gives up after `patience` seconds, as an RPC that is not answered."""

    def __init__(self, parties=2, patience=5):
        self.parties = parties
        self.patience = patience
        self.arrived = 0
        self.everyone_here = eventlet.event.Event()

    def call(self, result):
        def call(*args):
            self.arrived += 1
            if self.arrived == self.parties:
                self.everyone_here.send()
            with eventlet.Timeout(self.patience, RpcTimeout("asked one after the other")):
                self.everyone_here.wait()
            return result

        return call


def slow(result, seconds=0.3):
    def call(*args):
        eventlet.sleep(seconds)
        return result

    return call


def failing(exc):
    def call(*args):
        raise exc

    return call


def test_get_order_adds_the_processing_result():
    gateway = gateway_worker()
    gateway.order_generator.get_order.return_value = {"id": 3, "quantity": 2}
    gateway.order_processor.get_result.return_value = None
    assert gateway.get_order(None, "3") == {"id": 3, "quantity": 2, "processing": None}
    gateway.order_generator.get_order.assert_called_once_with(3)
    gateway.order_processor.get_result.assert_called_once_with(3)


def error_of(response):
    """(status, JSON body) of an error response a handler returned."""
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_data())


def test_get_order_of_a_missing_order_is_not_found_even_if_the_processor_is_down():
    gateway = gateway_worker()
    gateway.order_generator.get_order.return_value = None
    gateway.order_processor.get_result.side_effect = failing(RpcTimeout("no answer"))
    assert error_of(gateway.get_order(None, "3")) == (
        404,
        {"error": "NOT_FOUND", "message": "order 3 not found"},
    )


def test_get_order_asks_both_services_at_once():
    gateway = gateway_worker()
    both = Meeting()
    gateway.order_generator.get_order.side_effect = both.call({"id": 3, "quantity": 2})
    gateway.order_processor.get_result.side_effect = both.call({"order_id": 3})
    assert gateway.get_order(None, "3") == {"id": 3, "quantity": 2, "processing": {"order_id": 3}}


def test_get_order_with_a_bad_id_asks_no_service():
    gateway = gateway_worker()
    status, body = error_of(gateway.get_order(None, "0"))
    assert (status, body["error"]) == (400, "BAD_REQUEST")
    gateway.order_generator.get_order.assert_not_called()
    gateway.order_processor.get_result.assert_not_called()


def test_health_is_ok_when_both_services_answer_and_asks_them_at_once():
    gateway = gateway_worker()
    both = Meeting()
    gateway.order_generator.status.side_effect = both.call({"running": True})
    gateway.order_processor.metrics.side_effect = both.call({})
    status, body = gateway.health(None)
    assert status == 200
    assert body == {"status": "ok", "services": {"order_generator": "ok", "order_processor": "ok"}}


@pytest.mark.parametrize(
    "exc, state",
    [
        (RpcTimeout("late"), "unavailable"),
        (ServiceUnavailable("not running"), "unavailable"),
        (RemoteError("OperationalError", "(2003) Can't connect to MySQL server"), "error"),
    ],
)
def test_health_is_503_naming_the_service_that_fails(exc, state):
    gateway = gateway_worker()
    gateway.order_generator.status.return_value = {"running": True}
    gateway.order_processor.metrics.side_effect = failing(exc)
    status, body = gateway.health(None)
    assert status == 503
    assert body == {
        "status": "degraded",
        "services": {"order_generator": "ok", "order_processor": state},
    }
    assert "MySQL" not in json.dumps(body)


def test_openapi_json_is_the_yaml_document():
    assert gateway_worker().openapi(None) == openapi_document()


@pytest.mark.parametrize(
    "exc, status, code",
    [
        (BadRequest("bad id"), 400, "BAD_REQUEST"),
        (Unauthorized("missing bearer token"), 401, "UNAUTHORIZED"),
        (Forbidden("invalid token"), 403, "FORBIDDEN"),
        (ServiceUnavailable("order_generator is not running"), 503, "SERVICE_UNAVAILABLE"),
        (RpcTimeout("order_generator.status did not answer"), 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_known_errors_are_answered_with_their_code_and_message(exc, status, code):
    assert error_of(response_for_error(exc)) == (status, {"error": code, "message": str(exc)})


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("boom at /srv/app.py"),
        RemoteError("OperationalError", "(pymysql.err.OperationalError) SELECT 1 on db-host-7"),
        KeyError("secret"),
    ],
)
def test_a_fault_is_a_500_that_tells_the_client_nothing(exc):
    assert error_of(response_for_error(exc)) == (
        500,
        {"error": "INTERNAL_ERROR", "message": "internal error; see the gateway log"},
    )


def test_table_errors_are_answers_and_other_errors_still_raise():
    """nameko logs a raising worker with a traceback: only faults should."""
    gateway = gateway_worker()
    gateway.order_generator.status.side_effect = failing(ServiceUnavailable("down"))
    assert error_of(gateway.status(None))[0] == 503
    gateway.order_generator.status.side_effect = failing(RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        gateway.status(None)


class _Container:
    def spawn_managed_thread(self, run, identifier=None):
        return eventlet.spawn(run)


def shared_reads():
    reads = SharedReads()
    reads.container = _Container()
    reads.setup()
    return reads.get_dependency(None)


def test_concurrent_reads_share_one_call_that_started_after_they_arrived():
    read = shared_reads()
    calls = []
    release = eventlet.event.Event()

    def slow_call():
        calls.append(len(calls) + 1)
        release.wait() if len(calls) == 1 else None
        return {"call": len(calls)}

    first = eventlet.spawn(read, "metrics", slow_call)
    eventlet.sleep(0)  # the first call is now in progress
    later = [eventlet.spawn(read, "metrics", slow_call) for _ in range(5)]
    eventlet.sleep(0)
    release.send()
    assert first.wait() == {"call": 1}
    # Arrived during call 1, so answered by call 2, which started after them.
    assert [g.wait() for g in later] == [{"call": 2}] * 5
    assert calls == [1, 2]


def test_a_failed_shared_call_fails_its_waiters_and_the_next_read_tries_again():
    read = shared_reads()
    outcomes = iter([RpcTimeout("slow"), {"ok": True}])

    def call():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RpcTimeout):
        read("status", call)
    assert read("status", call) == {"ok": True}


def test_concurrent_health_checks_share_the_reads_behind_status_and_metrics():
    """A burst of health checks costs the services what one /metrics does."""
    gateway = worker_factory(GatewayService, shared_read=shared_reads())
    gateway.order_generator.status.side_effect = slow({"running": True})
    gateway.order_processor.metrics.side_effect = slow({})
    checks = [eventlet.spawn(gateway.health, None) for _ in range(20)]
    json_metrics = Request(EnvironBuilder(path="/metrics").get_environ())
    reads = [eventlet.spawn(gateway.status, None), eventlet.spawn(gateway.metrics, json_metrics)]
    assert [check.wait()[0] for check in checks] == [200] * 20
    status, metrics = (read.wait() for read in reads)
    assert status == {"running": True}
    assert json.loads(metrics.get_data()) == {}
    # One round in progress, and one for those that arrived during it.
    assert gateway.order_generator.status.call_count <= 2
    assert gateway.order_processor.metrics.call_count <= 2


def test_different_keys_do_not_share():
    read = shared_reads()
    assert read("a", lambda: 1) == 1
    assert read("b", lambda: 2) == 2


@pytest.mark.parametrize(
    "config, address",
    [
        ({"WEB_SERVER_ADDRESS": "127.0.0.1:8001"}, BindAddress("127.0.0.1", 8001)),
        ({"WEB_SERVER_ADDRESS": 8000}, BindAddress("", 8000)),  # YAML reads `8000` as an int
        ({"WEB_SERVER_ADDRESS": "0"}, BindAddress("", 0)),
    ],
)
def test_web_server_address_is_host_and_port(config, address):
    assert web_server_address(config) == address


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "localhost",
        "host:notaport",
        ":8000",
        "127.0.0.1:",
        "1:2:3",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
    ],
)
def test_a_malformed_web_server_address_is_a_startup_error_naming_it(value):
    with pytest.raises(StartupError) as error:
        web_server_address({"WEB_SERVER_ADDRESS": value})
    assert str(error.value).startswith("setting WEB_SERVER_ADDRESS must be [host:]port")


def listen_config(port):
    return {"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}


def test_a_busy_port_is_a_startup_error_naming_web_server_address():
    port = free_port()
    with listen(listen_config(port)):
        with pytest.raises(StartupError) as error:
            listen(listen_config(port))
    assert str(error.value) == (
        f"cannot listen on WEB_SERVER_ADDRESS=127.0.0.1:{port}: the port is in use "
        "(another gateway?); stop what holds it, or set WEB_SERVER_ADDRESS"
    )


def test_nothing_can_share_the_gateway_port_even_with_so_reuseport():
    port = free_port()
    with listen(listen_config(port)):
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", port))


def test_a_restarted_gateway_binds_while_old_connections_linger():
    port = free_port()
    server = listen(listen_config(port))
    client = socket.create_connection(("127.0.0.1", port))
    connection, _ = server.accept()
    connection.close()  # the server closes first: its side ends in TIME_WAIT
    client.close()
    server.close()
    with socket.socket() as plain:  # the port is still taken for a socket without SO_REUSEADDR
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    listen(listen_config(port)).close()


def test_a_burst_of_connections_waits_in_the_accept_queue_rather_than_being_dropped():
    """Past a full accept queue the kernel drops SYNs, and the client's
    connect waits a second or more for its retry (here, until its timeout):
    every connection made before the gateway accepts any is in the queue."""
    port = free_port()
    burst = 300
    clients, accepted = [], []
    with listen(listen_config(port)) as server:
        try:
            for _ in range(burst):  # none accepted yet
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            server.settimeout(10)
            for _ in range(burst):
                accepted.append(server.accept()[0])
            assert len(accepted) == burst
        finally:
            for connection in clients + accepted:
                connection.close()

"""Who may do what at the gateway, seen from outside: with a read token set,
every read needs a token and the console's page does not; control takes the
current or the next control token, never the read token; every 401 carries
a Bearer challenge; refusals are logged with the client's address, never
the token; and an address that keeps sending wrong tokens is told to wait
(429 with Retry-After) whatever it sends."""

import logging

import pytest
import requests

from harness.processes import TEST_TOKEN
from tests.support.services import InProcessServices

READ_TOKEN = "Rd4-ReAdOnly_7mKq2Wx9Zp3Lv8Hc5Nt"
NEXT_TOKEN = "Nx2-NeXt_CoNtrol9mKq2Wx9Zp3Lv8Hc"
WRONG_TOKEN = "Wr0-nOtThe_Token9mKq2Wx9Zp3Lv8Hc"
READS = [
    "/status",
    "/metrics",
    "/orders/1",
    "/dead-letters",
    "/dead-letters/groups",
    "/dead-letters/audit",
    "/instances",
    "/timing",
]
OPEN = ["/health", "/openapi.json"]
FREE = 3  # wrong tokens before an address is slowed down


@pytest.fixture(scope="module")
def services(make_database, make_vhost):
    running = InProcessServices(
        make_database(),
        make_vhost(),
        GATEWAY_READ_TOKEN=READ_TOKEN,
        GATEWAY_NEXT_TOKEN=NEXT_TOKEN,
    )
    running.start("generator", "processor", "gateway")
    try:
        response, _ = running.post("/orders", json={"quantity": 3})
        assert response.status_code == 201
        yield running
    finally:
        running.stop_all()


def raw_get(services, path, token=None):
    headers = {} if token is None else {"Authorization": "Bearer " + token}
    return requests.get(services.base_url + path, headers=headers, timeout=10, stream=True)


@pytest.mark.parametrize("path", READS)
def test_with_a_read_token_each_read_needs_a_token(services, path):
    response, body = services.get(path)
    assert (response.status_code, body["error"]) == (401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="order-pipeline"'
    for token in (READ_TOKEN, TEST_TOKEN, NEXT_TOKEN):
        assert services.get(path, token=token)[0].status_code == 200, token


def test_the_event_stream_needs_a_token_too_and_streams_with_one(services):
    refused = raw_get(services, "/events")
    assert refused.status_code == 401
    refused.close()
    with raw_get(services, "/events", token=READ_TOKEN) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("event:")) == "event: snapshot"


@pytest.mark.parametrize("path", OPEN + ["/", "/console/console.js"])
def test_health_the_api_document_and_the_console_files_stay_open(services, path):
    assert raw_get(services, path).status_code == 200


def test_control_takes_the_current_or_the_next_token_and_never_the_read_token(services):
    response, body = services.post("/stop", token=READ_TOKEN)
    assert (response.status_code, body["error"]) == (403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert services.get("/status", token=READ_TOKEN)[1]["running"] is False  # never started
    try:
        response, body = services.post("/start", token=NEXT_TOKEN)
        assert (response.status_code, body["running"]) == (200, True)
        response, body = services.post("/stop", token=TEST_TOKEN)
        assert (response.status_code, body["running"]) == (200, False)
    finally:
        services.post("/stop", token=TEST_TOKEN)


def test_a_wrong_token_is_a_401_challenge_logged_with_the_address(services, caplog):
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        response, body = services.post("/stop", token=WRONG_TOKEN)
    assert (response.status_code, body["error"]) == (401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="order-pipeline", error="invalid_token"'
    )
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gateway.auth"]
    assert "127.0.0.1" in line and "POST /stop" in line and WRONG_TOKEN not in line


def test_an_address_that_keeps_sending_wrong_tokens_is_told_to_wait(make_database, make_vhost):
    services = InProcessServices(
        make_database(), make_vhost(), GATEWAY_REFUSALS_BEFORE_SLOWDOWN=FREE
    ).start("gateway")
    try:
        # A missing token is no guess: never slowed down for it.
        assert [services.post("/stop", token=None)[0].status_code for _ in range(FREE + 2)] == [
            401
        ] * (FREE + 2)
        statuses = [
            services.post("/stop", token=WRONG_TOKEN)[0].status_code for _ in range(FREE + 1)
        ]
        assert statuses == [401] * (FREE + 1)
        response, body = services.post("/stop", token=TEST_TOKEN)  # even the right one waits
        assert (response.status_code, body["error"]) == (429, "TOO_MANY_REQUESTS")
        assert int(response.headers["Retry-After"]) >= 1
    finally:
        services.stop_all()

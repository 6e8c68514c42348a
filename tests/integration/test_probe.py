"""order_pipeline.commands.probe, which compose.yaml runs as the services'
healthchecks, run as a process the way a healthcheck runs it, against the
services in this test's own vhost and database.

It must exit 0 only when the service really answers, and otherwise exit 1
with one line saying why.
"""

import json
import os
import subprocess
import sys

import pytest
from kombu import Connection

from harness.processes import ROOT, free_port, wait_until
from harness.sandbox import drop_database

PROBE = [sys.executable, "-m", "order_pipeline.commands.probe"]
# Long enough for an answer on a loaded machine; the probes that must fail
# either fail at once or are given a short timeout of their own.
ANSWER_TIMEOUT = "30"


def run_probe(*args, amqp_uri="amqp://guest:guest@127.0.0.1:1/"):
    """(exit status, the one line printed) of the probe with these arguments,
    reading config.yml with AMQP_URI set as compose sets it."""
    result = subprocess.run(
        PROBE + list(args),
        cwd=ROOT,
        env={**os.environ, "AMQP_URI": amqp_uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return result.returncode, lines[0]


def rpc_queue_depth(amqp_uri, service):
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(
            "rpc-" + service, passive=True
        ).message_count


@pytest.mark.parametrize(
    "name, service, method",
    [
        ("generator", "order_generator", "status"),
        ("processor", "order_processor", "metrics"),
    ],
)
def test_rpc_probe_passes_when_the_service_answers(services, name, service, method):
    services.start(name)
    assert run_probe(
        "--timeout", ANSWER_TIMEOUT, "rpc", service, method, amqp_uri=services.amqp_uri
    ) == (0, f"{service}.{method}: ok")


def test_rpc_probe_fails_when_the_service_never_ran(amqp_uri):
    assert run_probe("rpc", "order_generator", "status", amqp_uri=amqp_uri) == (
        1,
        "order_generator.status: not running (nothing consumes its RPC queue)",
    )


def test_rpc_probe_fails_when_the_service_stopped_and_leaves_no_request(services):
    """Its queue outlives the service, so the request waits there unanswered;
    the probe gives up, and the request expires rather than piling up."""
    services.start("generator")
    assert (
        run_probe(
            "--timeout",
            ANSWER_TIMEOUT,
            "rpc",
            "order_generator",
            "status",
            amqp_uri=services.amqp_uri,
        )[0]
        == 0
    )
    services.stop("generator")

    assert run_probe(
        "--timeout", "1", "rpc", "order_generator", "status", amqp_uri=services.amqp_uri
    ) == (1, "order_generator.status: no answer within 1 s")
    wait_until(
        lambda: rpc_queue_depth(services.amqp_uri, "order_generator") == 0,
        30,
        message="the unanswered probe request to expire",
    )


def test_rpc_probe_fails_when_the_service_cannot_read_its_database(services):
    services.start("generator")
    drop_database(services.db_uri)
    status, line = run_probe(
        "--timeout", ANSWER_TIMEOUT, "rpc", "order_generator", "status", amqp_uri=services.amqp_uri
    )
    assert (status, line.split(": ", 1)[1].startswith("answered with an error: ")) == (1, True)


def test_rpc_probe_fails_without_a_broker():
    status, line = run_probe(
        "rpc", "order_generator", "status", amqp_uri=f"amqp://guest:secret@127.0.0.1:{free_port()}/"
    )
    assert status == 1
    assert line.startswith("order_generator.status: cannot reach the broker at AMQP_URI=amqp://")
    assert "secret" not in line


def test_http_probe_passes_only_while_health_is_ok(services):
    services.start("generator", "processor", "gateway")
    url = services.base_url + "/health"
    wait_until(lambda: services.get("/health")[0].status_code == 200, 30, message="/health ok")
    assert run_probe("http", url) == (0, f"{url}: 200 ok")

    services.stop("processor")
    status, line = run_probe("http", url)
    assert status == 1
    assert line.startswith(f"{url}: 503 ")
    assert json.loads(line.removeprefix(f"{url}: 503 "))["services"] == {
        "order_generator": "ok",
        "order_processor": "unavailable",
    }


def test_http_probe_fails_when_nothing_listens():
    url = f"http://127.0.0.1:{free_port()}/health"
    status, line = run_probe("--timeout", "2", "http", url)
    assert status == 1
    assert line.startswith(f"{url}: no answer: ")

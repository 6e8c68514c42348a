"""Service instances with the real services in process: every instance of
every service appears with what it said of itself, two processors are two
instances, a stopped one turns silent (and leaves the live count), and a
processor that stops taking events while events wait for it is flagged
stalled, then live again once it takes them. GET /instances, the console's
snapshot and /metrics say the same.

Heartbeats come every 0.2 s here; every state is waited for, never slept on.
"""

import os
import socket

import pytest
import requests
from sqlalchemy import create_engine, text

from gateway.openapi import openapi_document
from harness.processes import wait_until
from order_contract import GATEWAY, GENERATOR, PROCESSOR
from order_pipeline.version import VERSION, git_commit
from tests.support.openapi import response_schema, schema_violations
from tests.support.prometheus import TEXT_ACCEPT, exposition_samples
from tests.support.services import InProcessServices, wait_processed

FAST = {
    "HEARTBEAT_INTERVAL_SECONDS": 0.2,
    "INSTANCE_SILENT_SECONDS": 3,
    "PROCESSOR_STALL_SECONDS": 1,
}
TIMEOUT = 30


@pytest.fixture
def services(make_database, make_vhost):
    running = InProcessServices(make_database(), make_vhost(), **FAST)
    yield running
    running.stop_all()


def instances(services):
    """GET /instances, checked against its schema."""
    response, body = services.get("/instances")
    assert response.status_code == 200, body
    document = openapi_document()
    schema = response_schema(document, "/instances", "GET", 200)
    assert schema_violations(document, schema, body) == []
    return body


def wait_for_instances(services, condition, message):
    """The first GET /instances answer for which `condition` holds."""

    def check():
        body = instances(services)
        return body if condition(body) else None

    return wait_until(check, TIMEOUT, message=message)


def in_state(body, service, state):
    return [
        item for item in body["instances"] if (item["service"], item["state"]) == (service, state)
    ]


def metric(services, name, service):
    response = requests.get(
        services.base_url + "/metrics", headers={"Accept": TEXT_ACCEPT}, timeout=10
    )
    return exposition_samples(response).get(f'{name}{{service="{service}"}}')


def test_every_instance_reports_itself_and_a_stopped_processor_turns_silent(services):
    services.start("generator", "processor", "gateway")
    services.start_as("second processor", "processor")

    body = wait_for_instances(
        services,
        lambda body: (
            [body["services"][name]["live"] for name in (GENERATOR, PROCESSOR, GATEWAY)]
            == [1, 2, 1]
        ),
        "a generator, two processors and a gateway, all live",
    )
    processors = in_state(body, PROCESSOR, "live")
    assert len({item["instance_id"] for item in processors}) == 2
    for item in body["instances"]:
        # What each said of itself (in process: one host, one pid).
        assert (item["host"], item["pid"]) == (socket.gethostname(), os.getpid())
        assert (item["version"], item["commit"]) == (VERSION, git_commit())
        assert item["seconds_since_seen"] <= FAST["INSTANCE_SILENT_SECONDS"]
    pools = {item["service"]: item["workers_max"] for item in body["instances"]}
    assert pools == {GENERATOR: 40, PROCESSOR: 10, GATEWAY: 40}
    # Only the processors consume events, so only they say when they took one.
    consumers = {
        item["service"] for item in body["instances"] if item["seconds_since_event"] is not None
    }
    assert consumers == {PROCESSOR}
    wait_until(
        lambda: metric(services, "order_pipeline_service_instances", PROCESSOR) == 2,
        TIMEOUT,
        message="/metrics counting two processors",
    )

    services.stop("second processor")
    body = wait_for_instances(
        services,
        lambda body: in_state(body, PROCESSOR, "silent"),
        "the stopped processor shown silent",
    )
    (silent,) = in_state(body, PROCESSOR, "silent")
    assert silent["instance_id"] in {item["instance_id"] for item in processors}
    assert silent["seconds_since_seen"] > FAST["INSTANCE_SILENT_SECONDS"]
    assert body["services"][PROCESSOR]["silent"] == 1
    wait_until(
        lambda: (
            metric(services, "order_pipeline_service_instances", PROCESSOR) == 1
            and metric(services, "order_pipeline_service_instances_silent", PROCESSOR) == 1
        ),
        TIMEOUT,
        message="/metrics counting one processor live and one silent",
    )


@pytest.fixture
def lock_holder(services):
    """A connection of its own to the test's database, rolled back at the end."""
    engine = create_engine(services.db_uri)
    connection = engine.connect()
    yield connection
    connection.rollback()
    connection.close()
    engine.dispose()


def the_processor(services):
    (item,) = [item for item in instances(services)["instances"] if item["service"] == PROCESSOR]
    return item


def wait_for_processor(services, condition, message):
    def check():
        item = the_processor(services)
        return item if condition(item) else None

    return wait_until(check, TIMEOUT, message=message)


def test_a_processor_that_takes_no_event_while_events_wait_is_flagged_stalled(
    services, lock_holder
):
    services.start("generator", "processor", "gateway")
    # Just started, on a loaded machine, a service may miss the short RPC
    # timeout of these tests: first wait for both to answer.
    wait_until(lambda: services.get("/health")[0].status_code == 200, TIMEOUT, message="healthy")
    assert services.post("/orders", json={"quantity": 1})[0].status_code == 201
    wait_processed(services)
    # Idle for longer than PROCESSOR_STALL_SECONDS with nothing to take: live.
    idle = wait_for_processor(
        services,
        lambda item: item["seconds_since_event"] > FAST["PROCESSOR_STALL_SECONDS"],
        "a heartbeat of the idle processor",
    )
    assert (idle["state"], idle["events_waiting"], idle["queue_ready"]) == ("live", 0, 0)

    # Another transaction holds the running totals: the next batch waits for
    # its lock, and the events after it wait for the batch.
    lock_holder.execute(text("SELECT * FROM processing_totals FOR UPDATE"))
    for quantity in range(1, 5):
        assert services.post("/orders", json={"quantity": quantity})[0].status_code == 201
    stalled = wait_for_processor(
        services, lambda item: item["state"] == "stalled", "the processor flagged stalled"
    )
    assert stalled["seconds_since_event"] >= FAST["PROCESSOR_STALL_SECONDS"]
    assert stalled["events_waiting"] + stalled["queue_ready"] > 0
    assert instances(services)["services"][PROCESSOR] == {"live": 0, "silent": 0, "stalled": 1}
    wait_until(
        lambda: metric(services, "order_pipeline_service_instances_stalled", PROCESSOR) == 1,
        TIMEOUT,
        message="/metrics counting the stalled processor",
    )

    lock_holder.rollback()  # the lock goes: the batch goes through, then the rest
    wait_processed(services)
    wait_for_processor(services, lambda item: item["state"] == "live", "the processor live again")

"""Service instances as a user deploys them: each service a `nameko run`
process, two processors among them. Each process is one instance with its
own pid; a processor stopped with SIGTERM turns silent while the rest stay
live, and /metrics counts it out."""

import socket

import requests

from harness.processes import wait_until
from order_contract import GATEWAY, GENERATOR, PROCESSOR
from order_pipeline.version import VERSION, git_commit
from tests.support.prometheus import TEXT_ACCEPT, exposition_samples

SETTINGS = {"HEARTBEAT_INTERVAL_SECONDS": 0.5, "INSTANCE_SILENT_SECONDS": 3}
TIMEOUT = 60


def instances_where(system, condition, message):
    def check():
        response = system.get("/instances")
        if response.status_code != 200:
            return None
        body = response.json()
        return body if condition(body) else None

    return wait_until(check, TIMEOUT, interval=0.2, message=message)


def state_of(body, pid):
    (item,) = [item for item in body["instances"] if item["pid"] == pid]
    return item["state"]


def test_two_processor_processes_are_two_instances_and_a_stopped_one_turns_silent(pipeline):
    system = pipeline(**SETTINGS).start()
    second = system.start_service("processor_service")
    pids = {
        GENERATOR: system.generator.process.pid,
        PROCESSOR: {system.processor.process.pid, second.process.pid},
        GATEWAY: system.gateway.process.pid,
    }

    body = instances_where(
        system,
        lambda body: (
            sorted(item["pid"] for item in body["instances"] if item["state"] == "live")
            == sorted([pids[GENERATOR], *pids[PROCESSOR], pids[GATEWAY]])
        ),
        "four live instances, one per process",
    )
    assert {item["pid"] for item in body["instances"] if item["service"] == PROCESSOR} == pids[
        PROCESSOR
    ]
    for item in body["instances"]:
        assert item["host"] == socket.gethostname()
        assert (item["version"], item["commit"]) == (VERSION, git_commit())
    assert body["services"][PROCESSOR] == {"live": 2, "silent": 0, "stalled": 0}

    second.stop()  # SIGTERM: a graceful stop, and no more heartbeats
    body = instances_where(
        system,
        lambda body: state_of(body, second.process.pid) == "silent",
        "the stopped processor silent",
    )
    assert state_of(body, system.processor.process.pid) == "live"
    assert body["services"][PROCESSOR]["live"] == 1

    def processors_in_metrics():
        response = system.get("/metrics", headers={"Accept": TEXT_ACCEPT})
        samples = exposition_samples(response)
        return (
            samples.get(f'order_pipeline_service_instances{{service="{PROCESSOR}"}}'),
            samples.get(f'order_pipeline_service_instances_silent{{service="{PROCESSOR}"}}'),
        )

    wait_until(
        lambda: processors_in_metrics() == (1, 1), TIMEOUT, message="/metrics: 1 live, 1 silent"
    )
    assert requests.get(system.url("/health"), timeout=10).status_code == 200

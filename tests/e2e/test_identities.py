"""The whole pipeline with each service on its own users, as a deployment
runs it: the provision command made them (harness.identities: a private
RabbitMQ node with its management API, the machine's MariaDB), each service
process gets its own AMQP_URI and DB_URI, and the gateway no usable
database at all. Everything a user does still works: orders flow and are
processed, /metrics equals SQL, generation stops and starts over HTTP, dead
letters are listed and discarded, each container's health probe answers
with that container's user, and the operator's user re-creates the queues.
What each user may not do is tests/integration/test_identities.py."""

import json
import os
import subprocess
import sys
import uuid

import amqp
import pytest
from nameko.rpc import RPC_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TEMPLATE

from harness.broker import publish_order_created
from harness.identities import amqp_channel, identity_sandbox, rabbit_with_management
from harness.processes import ROOT, Pipeline, wait_until
from harness.sandbox import rpc_proxy
from harness.tables import order_count, processed_count, sql_metrics, unprocessed_order_ids
from order_contract import GENERATOR, PROCESSOR
from order_pipeline.identities import RPC_EXCHANGE

SERVICES = ("generator_service", "processor_service", "gateway")


@pytest.fixture(scope="module")
def identities():
    with rabbit_with_management() as rabbit:
        with identity_sandbox(rabbit) as sandbox:
            yield sandbox


@pytest.fixture
def system(identities, tmp_path):
    # The pipeline's own AMQP_URI and DB_URI are the administrators' (for
    # the tests' read-backs); each service process gets its own.
    pipeline = Pipeline(identities.db_admin_uri, identities.admin_amqp_uri(), str(tmp_path))
    try:
        for service in SERVICES:
            process = pipeline.start_service(service, **identities.service_environment(service))
            setattr(pipeline, service.split("_")[0], process)
        pipeline.wait_healthy(timeout=60)
        yield pipeline
    finally:
        pipeline.stop()


def probe(amqp_uri, service, method):
    env = {**os.environ, "AMQP_URI": amqp_uri}
    command = [sys.executable, "-m", "order_pipeline.commands.probe", "rpc", service, method]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def request_through_the_default_exchange(amqp_uri):
    """As the processor's user: a request published to `rpc-order_generator`
    by name; the generator's answer, from a reply queue of the processor's."""
    reply_key = str(uuid.uuid4())
    reply_queue = RPC_REPLY_QUEUE_TEMPLATE.format(PROCESSOR, reply_key)
    with amqp_channel(amqp_uri) as channel:
        channel.queue_declare(reply_queue, durable=True, auto_delete=False)
        channel.queue_bind(reply_queue, RPC_EXCHANGE, reply_key)
        channel.basic_publish(
            amqp.Message(
                json.dumps({"args": [], "kwargs": {}}),
                content_type="application/json",
                reply_to=reply_key,
                correlation_id=str(uuid.uuid4()),
            ),
            exchange="",
            routing_key=RPC_QUEUE_TEMPLATE.format(GENERATOR),
        )
        reply = wait_until(
            lambda: channel.basic_get(reply_queue, no_ack=True), 30, message="the reply"
        )
        channel.queue_delete(reply_queue)
    return json.loads(reply.body)


def test_the_pipeline_runs_with_each_service_on_its_own_users(identities, system):
    db = identities.db_admin_uri
    assert system.post("/start").json()["running"] is True
    wait_until(lambda: order_count(db) >= 5, 60, message="orders created")
    assert system.post("/stop").json()["running"] is False
    wait_until(lambda: not unprocessed_order_ids(db), 60, message="every order processed")
    assert processed_count(db) == order_count(db)
    assert system.get("/metrics").json() == sql_metrics(db)
    # The processor may publish to any queue by name (its retries go
    # through the default exchange), but what reaches the generator's RPC
    # queue that way is no call: nameko takes the method from the routing
    # key, which is then the queue's name.
    answer = request_through_the_default_exchange(identities.amqp_uri("order_processor"))
    assert answer["error"]["exc_type"] == "MethodNotFound", answer
    assert system.get("/status").json()["running"] is False
    created = system.post("/orders", json={"quantity": 7})
    assert created.status_code == 201, created.text

    # A dead letter: the processor parks it, lists it and discards it, all
    # with its own user, on the gateway's request.
    publish_order_created(identities.admin_amqp_uri(), [{"order_id": 999_999_999}])
    listed = wait_until(
        lambda: system.get("/dead-letters").json()["dead_letters"], 60, message="a dead letter"
    )
    discarded = system.post("/dead-letters/discard", json={"ids": [listed[0]["id"]]})
    assert discarded.status_code == 200, discarded.text
    assert system.get("/dead-letters").json()["count"] == 0

    # Each container's healthcheck, with that container's user.
    generator = probe(identities.amqp_uri("order_generator"), "order_generator", "status")
    assert generator.returncode == 0, generator.stdout
    processor = probe(identities.amqp_uri("order_processor"), "order_processor", "metrics")
    assert processor.returncode == 0, processor.stdout
    # ... which is all it may call.
    stop = probe(identities.amqp_uri("order_processor"), "order_generator", "stop")
    assert stop.returncode == 1
    assert "access to topic 'order_generator.stop'" in stop.stdout, stop.stdout

    # The operator's user, as in `make shell`.
    with rpc_proxy(identities.amqp_uri("order_operator")) as operator:
        assert operator.order_generator.start()["running"] is True
        assert operator.order_processor.metrics() == system.get("/metrics").json()

    # Nothing it did along the way was refused by the broker or the database.
    for process in system.processes:
        output = process.output()
        assert "ACCESS_REFUSED" not in output, process.log_path
        assert "command denied" not in output, process.log_path


def test_the_operator_re_creates_the_queues(identities, system):
    """`make recreate-queues` with the operator's user: every project queue
    moved to quorum, its messages kept (run with the services stopped)."""
    system.stop()
    env = {
        **os.environ,
        "AMQP_URI": identities.amqp_uri("order_operator"),
        "QUEUE_TYPE": "quorum",
    }
    command = [sys.executable, "-m", "order_pipeline.commands.recreate_queues"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "re-created as quorum" in result.stdout, result.stdout
    assert "rpc-order_generator: re-created as quorum" in result.stdout

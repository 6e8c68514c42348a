"""The three services as in-process nameko containers for tests, on the real
RabbitMQ and MariaDB in the test's own vhost and database, each started and
stopped on its own so a test can take one away; plus an HTTP client for the
gateway whose every response goes through `json_body`, which fails the test
on a body that is not JSON or that shows a traceback, SQL, a host name or an
exception's module path (`LEAKS`).
"""

import json
import re
import socket
import weakref

import eventlet
import requests
from nameko.containers import get_container_cls
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from gateway import GatewayService
from generator_service.service import OrderGeneratorService
from harness.processes import CONFIG, TEST_TOKEN, free_port, wait_until
from harness.tables import unprocessed_order_ids
from order_pipeline.config import load_config
from processor_service import OrderProcessorService

SERVICE_CLASSES = {
    "generator": OrderGeneratorService,
    "processor": OrderProcessorService,
    "gateway": GatewayService,
}
INTERVAL = 0.2
# Short, for the tests that wait for the gateway to give up on a service.
RPC_TIMEOUT = 1.0
# For the rest: on a busy machine a slow answer is not a missing service.
PATIENT_RPC_TIMEOUT = 5
MAX_REQUEST_BYTES = 4096
# Ticks that must run, once generation is off, before "no order came" means
# anything: the first may have begun before the stop, the second may come
# too soon after it to claim a turn (TICK_SLACK); the third would claim one.
TICKS_THAT_WOULD_CREATE = 3

# What a response body must never show.
NOT_SHOWN = [
    r"Traceback",
    r"File \"",
    r"\bSELECT\b",
    r"\bINSERT\b",
    r"\bUPDATE\b",
    r"sqlalchemy",
    r"pymysql",
    r"mysql",
    r"amqp://",
    r"127\.0\.0\.1",
    r"localhost",
    r"\b(nameko|werkzeug|eventlet|gateway|generator_service|processor_service|"
    r"order_pipeline|builtins)\.\w",
]
HOST_NAME = r"\b" + re.escape(socket.gethostname()) + r"\b"
LEAKS = re.compile("|".join([*NOT_SHOWN, HOST_NAME]), re.IGNORECASE)
# GET /instances names each instance's host on purpose; nothing else may.
SHOWS_HOSTS = {"/instances"}
LEAKS_BUT_HOSTS = re.compile("|".join(NOT_SHOWN), re.IGNORECASE)


def in_process_config(db_uri, amqp_uri, **settings):
    """config.yml's defaults with this test's database, vhost and port."""
    config = load_config(CONFIG)
    config.pop("LOGGING")
    config.update(
        {
            "AMQP_URI": amqp_uri,
            "DB_URI": db_uri,
            "DB_URIS": {key: db_uri for key in config["DB_URIS"]},
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "GATEWAY_TOKEN": TEST_TOKEN,
            # The suites send many wrong tokens on purpose, all from
            # 127.0.0.1: no slowdown unless a test asks for it.
            "GATEWAY_REFUSALS_BEFORE_SLOWDOWN": 0,
            "RPC_TIMEOUT_SECONDS": RPC_TIMEOUT,
            "ORDER_INTERVAL_SECONDS": INTERVAL,
            "GENERATE_ON_FIRST_START": False,
            "MAX_REQUEST_BYTES": MAX_REQUEST_BYTES,
        }
    )
    config.update(settings)
    return config


# Every instance made, so that tests/conftest.py can stop whatever a test
# module left running: a container that outlives its module keeps its timer
# ticking and its consumers reading, into later modules' spans and logs.
LIVE = weakref.WeakSet()


def stop_leftovers():
    """Stop every container still running; return their labels."""
    left = []
    for services in list(LIVE):
        left.extend(services.containers)
        services.stop_all()
    return left


class InProcessServices:
    """The services as in-process nameko containers, started and stopped
    one by one, plus an HTTP client for the gateway. As a context manager,
    every container still running is stopped on leaving it."""

    def __init__(self, db_uri, amqp_uri, **settings):
        LIVE.add(self)
        self.db_uri = db_uri
        self.amqp_uri = amqp_uri
        self.config = in_process_config(db_uri, amqp_uri, **settings)
        self.containers = {}
        self.port = int(self.config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1])
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self, *names, **overrides):
        for name in names:
            self.start_as(name, name, **overrides)
        return self

    def start_as(self, label, name, **overrides):
        """Start service `name` as another instance, known here as `label`."""
        config = {**self.config, **overrides}
        container = get_container_cls(config)(SERVICE_CLASSES[name], config)
        container.start()
        self.containers[label] = container

    def stop(self, *names):
        """Stop these containers, at once (each takes a second or two)."""
        stopping = eventlet.GreenPile()
        for name in names:
            stopping.spawn(self.containers.pop(name).stop)
        list(stopping)

    def stop_all(self):
        self.stop(*list(self.containers))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop_all()

    def rpc(self):
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri})

    def request(self, method, path, token=None, **kwargs):
        """(response, JSON body); fails on a body that is not clean JSON."""
        kwargs.setdefault("timeout", 10)
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        response = requests.request(method, self.base_url + path, headers=headers, **kwargs)
        return response, json_body(response)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, token=TEST_TOKEN, **kwargs):
        return self.request("POST", path, token=token, **kwargs)


def json_body(response):
    """The JSON body of a gateway response, checked for what must not leak."""
    assert response.headers["Content-Type"] == "application/json", response.headers
    if response.request.method == "HEAD":
        assert response.content == b""
        return None
    text = response.content.decode("utf-8")
    if response.request.path_url != "/openapi.json":  # a document about errors
        leaks = LEAKS_BUT_HOSTS if response.request.path_url in SHOWS_HOSTS else LEAKS
        assert not leaks.search(text), text
    body = json.loads(text)
    if response.status_code >= 400 and response.request.path_url != "/health":
        assert set(body) == {"error", "message"}, body
        assert isinstance(body["error"], str) and isinstance(body["message"], str)
    return body


def wait_processed(services, timeout=15):
    wait_until(
        lambda: not unprocessed_order_ids(services.db_uri), timeout, message="every order processed"
    )


def wait_for_ticks(services, count=TICKS_THAT_WOULD_CREATE, timeout=30):
    """Wait until the generator's timer has finished `count` more ticks,
    counting from now; fail if one of them raised."""
    outcomes = []

    def tick_done(worker_ctx, result, exc_info):
        outcomes.append(exc_info)
        return len(outcomes) == count

    generator = services.containers["generator"]
    with entrypoint_waiter(generator, "generate_order", timeout=timeout, callback=tick_done):
        pass
    assert outcomes == [None] * count, outcomes

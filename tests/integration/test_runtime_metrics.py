"""Each service process's own metrics endpoint, served by the real
services (and by small test services) on free ports: what it counts, that
it answers a request with no Accept header, that it stops with its service
and gives its port back, and the one-line error for a busy port."""

import socket

import pytest
import requests
from eventlet.event import Event
from nameko.containers import ServiceContainer
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from harness.processes import free_port, wait_until
from order_pipeline.errors import StartupError
from order_pipeline.extensions.runtime_metrics import RuntimeMetrics
from order_pipeline.settings import MetricsAddress
from tests.support.prometheus import exposition_samples, promtool
from tests.support.services import wait_processed


def runtime_figures(port, **headers):
    response = requests.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200
    return response, exposition_samples(response)


def worker_count(figures, service, entrypoint, kind, outcome="ok"):
    labels = f'entrypoint="{entrypoint}",kind="{kind}",outcome="{outcome}",service="{service}"'
    return figures.get(f"order_pipeline_worker_duration_seconds_count{{{labels}}}", 0)


def port_is_free(port):
    """Nothing listens on it: a restarted service could bind it (with
    SO_REUSEADDR, as every listener here sets, past closed connections
    still in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return True
        except OSError:
            return False


def test_each_service_process_serves_its_own_runtime_metrics(services):
    ports = {name: free_port() for name in ("generator", "processor", "gateway")}
    services.config.update(
        {
            "GENERATOR_METRICS_ADDRESS": f"127.0.0.1:{ports['generator']}",
            "PROCESSOR_METRICS_ADDRESS": f"127.0.0.1:{ports['processor']}",
            "GATEWAY_METRICS_ADDRESS": f"127.0.0.1:{ports['gateway']}",
            "GATEWAY_MAX_WORKERS": 24,
            "GENERATOR_MAX_WORKERS": 16,
        }
    )
    services.start("generator", "processor", "gateway")
    with services.rpc() as proxy:
        for quantity in (1, 2, 3):
            proxy.order_generator.create_order(quantity)
    wait_processed(services)
    services.get("/status")
    # No Accept header at all: still an answer, in the text format.
    response, generator = runtime_figures(ports["generator"])
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert worker_count(generator, "order_generator", "create_order", "rpc") == 3
    assert generator['order_pipeline_workers_max{service="order_generator"}'] == 16
    assert generator["process_resident_memory_bytes"] > 0
    assert generator["process_cpu_seconds_total"] > 0
    _, processor = runtime_figures(ports["processor"])
    assert worker_count(processor, "order_processor", "handle_order_created", "event") >= 1
    assert worker_count(processor, "order_processor", "create_order", "rpc") == 0
    assert processor['order_pipeline_workers_max{service="order_processor"}'] == 10
    _, gateway = runtime_figures(ports["gateway"], Accept="application/openmetrics-text")
    assert worker_count(gateway, "gateway", "status", "http") == 1
    # The gateway's and the generator's pools are their own size; the processor takes max_workers.
    assert gateway['order_pipeline_workers_max{service="gateway"}'] == 24
    checked = promtool("check", "metrics", stdin=runtime_figures(ports["processor"])[0].content)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The endpoint stops with its service, and gives its port back.
    services.stop("processor")
    assert port_is_free(ports["processor"])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{ports['processor']}/metrics", timeout=5)


RELEASE = Event()


class Holder:
    """Holds a worker until the test releases it."""

    name = "holder"
    runtime_metrics = RuntimeMetrics(lambda config: config["TEST_METRICS_ADDRESS"])

    @rpc
    def hold(self):
        RELEASE.wait()
        return "released"


def test_the_worker_pool_use_shows_the_workers_running_now(amqp_uri):
    global RELEASE
    RELEASE = Event()
    port = free_port()
    config = {
        "AMQP_URI": amqp_uri,
        "max_workers": 4,
        "TEST_METRICS_ADDRESS": MetricsAddress("TEST_METRICS_ADDRESS", "127.0.0.1", port),
    }
    container = ServiceContainer(Holder, config)
    container.start()
    try:

        def active():
            return runtime_figures(port)[1]['order_pipeline_workers_active{service="holder"}']

        assert active() == 0
        with ClusterRpcProxy(config) as proxy:
            replies = [proxy.holder.hold.call_async() for _ in range(2)]
            wait_until(lambda: active() == 2, 20, message="two workers held")
            RELEASE.send()
            assert [reply.result() for reply in replies] == ["released"] * 2
        wait_until(lambda: active() == 0, 20, message="no worker running")
        figures = runtime_figures(port)[1]
        assert figures['order_pipeline_workers_max{service="holder"}'] == 4
        assert worker_count(figures, "holder", "hold", "rpc") == 2
    finally:
        if not RELEASE.ready():
            RELEASE.send()
        container.stop()


class Idle:
    name = "idle"
    runtime_metrics = RuntimeMetrics(lambda config: config["TEST_METRICS_ADDRESS"])


def test_a_busy_metrics_port_stops_the_service_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        address = MetricsAddress("PROCESSOR_METRICS_ADDRESS", "127.0.0.1", port)
        container = ServiceContainer(Idle, {"TEST_METRICS_ADDRESS": address})
        with pytest.raises(StartupError) as error:
            container.start()
        container.kill()
    message = str(error.value)
    assert f"PROCESSOR_METRICS_ADDRESS=127.0.0.1:{port}" in message and "\n" not in message

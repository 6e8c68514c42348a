"""Reading Prometheus expositions, and running Debian's `prometheus`
package (promtool and a real Prometheus server) for the tests.

Nothing is downloaded: both binaries come from the system package, which
.ci/run installs when promtool is missing. A test that needs them fails
(does not skip) when they are absent.
"""

import os
import shutil
import subprocess
import tempfile

import requests
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from harness.processes import ROOT, free_port, wait_until

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
DEPLOY = os.path.join(ROOT, "deploy", "prometheus")
MISSING = "needs Debian's prometheus package (apt-get install prometheus); .ci/run installs it"
# What a Prometheus 2.x server sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TEXT_ACCEPT = "text/plain;version=0.0.4"


def sample_key(sample) -> str:
    """`name` or `name{a="1",b="2"}` (labels sorted)."""
    if not sample.labels:
        return sample.name
    labels = ",".join(f'{name}="{value}"' for name, value in sorted(sample.labels.items()))
    return f"{sample.name}{{{labels}}}"


def exposition_samples(response) -> dict[str, float]:
    """{sample_key: value} of a /metrics response in either format."""
    openmetrics = response.headers["Content-Type"].startswith("application/openmetrics-text")
    parse = parse_openmetrics if openmetrics else parse_text
    return {
        sample_key(sample): sample.value
        for family in parse(response.text)
        for sample in family.samples
    }


def runtime_samples(metrics_port) -> dict[str, float]:
    """The samples a service process serves on its runtime metrics port
    (order_pipeline.runtime_metrics: *_METRICS_ADDRESS)."""
    response = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    response.raise_for_status()
    return exposition_samples(response)


def workers_finished(metrics_port, entrypoint) -> float:
    """How many workers of `entrypoint` (the service's method name: a timer
    tick, an event batch, an RPC call) the process has finished, whatever
    their outcome, by its runtime metrics."""
    return sum(
        value
        for key, value in runtime_samples(metrics_port).items()
        if key.startswith("order_pipeline_worker_duration_seconds_count{")
        and f'entrypoint="{entrypoint}"' in key
    )


def wait_for_workers(metrics_port, entrypoint, count, timeout=60):
    """Wait until the process has finished `count` more workers of
    `entrypoint`, counting from now."""
    wanted = workers_finished(metrics_port, entrypoint) + count
    wait_until(
        lambda: workers_finished(metrics_port, entrypoint) >= wanted,
        timeout,
        message=f"{count} more {entrypoint} workers",
    )


def workers_active(metrics_port, service) -> float:
    """Workers the process runs now, by its runtime metrics."""
    return runtime_samples(metrics_port)[f'order_pipeline_workers_active{{service="{service}"}}']


def promtool(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    assert os.access(PROMTOOL, os.X_OK), MISSING
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, timeout=120, cwd=ROOT
    )


class PrometheusServer:
    """A real Prometheus server on a free port, with a configuration and a
    data directory of its own in a temporary directory; `stop()` ends it
    and removes the directory whatever happened."""

    def __init__(self, scrape_configs: list[dict], scrape_interval: str = "1s"):
        assert os.access(PROMETHEUS, os.X_OK), MISSING
        self.directory = tempfile.mkdtemp(prefix="orders-prometheus-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [os.path.join(DEPLOY, "alerts.yml")],
            "scrape_configs": scrape_configs,
        }
        self.config_path = os.path.join(self.directory, "prometheus.yml")
        with open(self.config_path, "w") as config_file:
            yaml.safe_dump(config, config_file)
        self.log_path = os.path.join(self.directory, "prometheus.log")

    def start(self, timeout: float = 60):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.ready, timeout, interval=0.2, message="Prometheus ready")
        return self

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Prometheus exited: {self.log()}")
        try:
            return requests.get(self.url + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def query(self, expression: str) -> list[dict]:
        """The instant vector `expression` gives now: [{"metric", "value"}]."""
        response = requests.get(
            self.url + "/api/v1/query", params={"query": expression}, timeout=10
        )
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expression: str) -> float | None:
        """The single value `expression` gives now, or None if it gives none."""
        result = self.query(expression)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> list[dict]:
        response = requests.get(self.url + "/api/v1/targets", timeout=10)
        return response.json()["data"]["activeTargets"]

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return log.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def wait_for_value(server: PrometheusServer, expression: str, wanted: float, timeout: float = 60):
    """Poll Prometheus until `expression` gives `wanted`; fail with the last
    value (and Prometheus's view of its targets) if it never does."""
    last = [None]

    def reached():
        last[0] = server.value(expression)
        return last[0] == wanted

    try:
        wait_until(reached, timeout, interval=0.5, message=f"{expression} == {wanted}")
    except AssertionError as exc:
        health = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in server.targets()]
        raise AssertionError(f"{exc}; last value {last[0]}; targets {health}") from None

"""Run the services as real `nameko run` processes, as a user would."""

import os
import signal
import subprocess
import sys
import time

import requests
from sqlalchemy import create_engine

from harness.ports import free_port
from order_pipeline.broker import Broker, broker
from order_pipeline.database import connect_args
from order_pipeline.settings import db_tls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMEKO = os.path.join(os.path.dirname(sys.executable), "nameko")
CONFIG = os.path.join(ROOT, "config.yml")
# The control token of every test pipeline: strong enough for the gateway's
# start-up check (gateway/tokens.py), and of no use anywhere else.
TEST_TOKEN = "Qx7-tEsT_9kLmZ2vR8pWn4HjY6cBf3Ud"


def wait_until(predicate, timeout, interval=0.1, message="condition"):
    """Poll `predicate` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class NamekoProcess:
    """One `nameko run --config config.yml <modules>` process."""

    def __init__(self, modules, env, log_path, prefix=()):
        self.modules = list(modules)
        # What runs it (`ip netns exec NS` for a network namespace).
        self.prefix = list(prefix)
        self.env = env
        self.log_path = log_path
        self.process = None
        self.terminating = False

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*self.prefix, NAMEKO, "run", "--config", CONFIG, *self.modules],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def signal(self, signum):
        if self.running:
            self.process.send_signal(signum)
            self.terminating |= signum == signal.SIGTERM

    def stop(self, timeout=20):
        """SIGTERM (nameko stops gracefully) unless one was sent already,
        then SIGKILL and fail if it has not exited within `timeout`."""
        if not self.running:
            return self.process.returncode if self.process else None
        if not self.terminating:
            self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.modules} did not stop on SIGTERM{self._slow_stop_report()}"
            ) from None

    def _slow_stop_report(self):
        """The service's own account of a stop that did not end (see
        order_pipeline.extensions.containers), to show with the failure."""
        output = self.output()
        start = output.rfind("still stopping after")
        return "" if start < 0 else f"; its log says:\n{output[start:][:20000]}"

    def kill(self):
        if self.running:
            self.process.kill()
            self.process.wait(10)

    def output(self):
        with open(self.log_path, errors="replace") as log:
            return log.read()

    def wait_for_output(self, text, timeout=20):
        return wait_until(
            lambda: text in self.output(), timeout, message=f"{text!r} in {self.log_path}"
        )


class Pipeline:
    """The three services as separate processes against one database and
    vhost, plus helpers to talk to them over HTTP, or over HTTPS with
    `https_ca` (the CA of the gateway's certificate for "localhost", which
    GATEWAY_TLS_* in `settings` name).

    `host` is the address the gateway listens on; `prefixes` maps a module
    to the command prefix that runs it (harness.netns: a network namespace
    of its own)."""

    def __init__(
        self, db_uri, amqp_uri, log_dir, https_ca=None, host="127.0.0.1", prefixes=None, **settings
    ):
        self.db_uri = db_uri
        self.amqp_uri = amqp_uri
        self.log_dir = log_dir
        self.host = host
        self.prefixes = prefixes or {}
        self.port = free_port()
        if https_ca is None:
            self.base_url = f"http://{host}:{self.port}"
            self.http_options = {}
        else:
            self.base_url = f"https://localhost:{self.port}"
            self.http_options = {"verify": https_ca}
        self.settings = {"ORDER_INTERVAL_SECONDS": "0.2", **settings}
        self.processes = []

    def env(self, **overrides):
        env = dict(os.environ)
        env.update(
            {
                "DB_URI": self.db_uri,
                "AMQP_URI": self.amqp_uri,
                "WEB_SERVER_ADDRESS": f"{self.host}:{self.port}",
                "GATEWAY_TOKEN": TEST_TOKEN,
                "RPC_TIMEOUT_SECONDS": "5",
                "PYTHONUNBUFFERED": "1",
                "PYTHONWARNINGS": "ignore",
            }
        )
        env.update({key: str(value) for key, value in self.settings.items()})
        env.update({key: str(value) for key, value in overrides.items()})
        return env

    @property
    def broker(self) -> Broker:
        """The broker as a client of this pipeline reaches it: AMQP_URI,
        with the AMQP_SSL_* files among its settings."""
        return broker(self._client_config())

    def engine(self):
        """An engine on DB_URI (with the DB_SSL_* files among its settings);
        the caller disposes of it."""
        return create_engine(self.db_uri, connect_args=connect_args(db_tls(self._client_config())))

    def _client_config(self):
        return {"AMQP_URI": self.amqp_uri, **self.settings}

    def start_service(self, module, **overrides):
        name = f"{module}-{len(self.processes)}.log"
        process = NamekoProcess(
            [module],
            self.env(**overrides),
            os.path.join(self.log_dir, name),
            self.prefixes.get(module, ()),
        ).start()
        self.processes.append(process)
        return process

    def start(self):
        """Generator, processor and gateway; returns when /health is ok."""
        self.generator = self.start_service("generator_service")
        self.processor = self.start_service("processor_service")
        self.gateway = self.start_service("gateway")
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout=30):
        def healthy():
            try:
                return self.get("/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout, message="gateway /health")

    def url(self, path):
        return self.base_url + path

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url(path), **self.http_options, **kwargs)

    def post(self, path, token=TEST_TOKEN, **kwargs):
        kwargs.setdefault("timeout", 10)
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        return requests.post(self.url(path), headers=headers, **self.http_options, **kwargs)

    def stop(self):
        """SIGTERM to every process at once, then wait for each."""
        for process in self.processes:
            process.signal(signal.SIGTERM)
        errors = []
        for process in self.processes:
            try:
                process.stop()
            except AssertionError as exc:
                errors.append(str(exc))
        if errors:
            raise AssertionError("; ".join(errors))

"""compose.yaml brought up for real by podman-compose, for tests/compose/.

`Stack` runs podman-compose on compose.yaml with compose.check.yaml (local
images, nothing pulled) under a compose project name of its own, with an
.env it writes with random passwords and tokens, and reads what a user
would: the gateway's HTTP API on the published port, the containers'
logs, and the database through `podman exec` in its container (its port is
not published: the machine's own MariaDB holds 3306).
"""

import os
import re
import secrets
import subprocess
from pathlib import Path

import requests

from harness.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PODMAN_COMPOSE = os.environ.get(
    "PODMAN_COMPOSE", str(ROOT / ".venv" / "podman-compose" / "bin" / "podman-compose")
)
COMPOSE_FILES = ["-f", "compose.yaml", "-f", "compose.check.yaml"]
PASSWORDS = [
    "RABBITMQ_ADMIN_PASSWORD",
    "DB_ROOT_PASSWORD",
    "ORDER_GENERATOR_AMQP_PASSWORD",
    "ORDER_PROCESSOR_AMQP_PASSWORD",
    "ORDER_GATEWAY_AMQP_PASSWORD",
    "ORDER_OPERATOR_AMQP_PASSWORD",
    "ORDER_GENERATOR_DB_PASSWORD",
    "ORDER_PROCESSOR_DB_PASSWORD",
    "ORDER_MIGRATE_DB_PASSWORD",
]
# The line the processor prints for each order it has processed.
PROCESSED_LINE = re.compile(r"Order (\d+) OrderExecutionPrice ")
PROJECT_LABEL = "io.podman.compose.project"


def podman(*args, timeout=120, check=True):
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


class Stack:
    compose_files = COMPOSE_FILES
    passwords = PASSWORDS
    scheme = "http"
    # What requests checks the gateway's certificate against, over HTTPS.
    verify = True

    def __init__(self, directory, **settings):
        self.project = "orders_check_" + secrets.token_hex(4)
        self.port = free_port()
        self.base_url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.env = {name: secrets.token_urlsafe(18) for name in self.passwords}
        self.env.update(
            {
                "GATEWAY_TOKEN": secrets.token_urlsafe(32),
                # Loopback only, on a port of its own.
                "GATEWAY_PORT": f"127.0.0.1:{self.port}",
                **settings,
            }
        )
        self.env_file = Path(directory) / ".env"
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in self.env.items()))

    def compose(self, *args, timeout=900):
        done = subprocess.run(
            [
                PODMAN_COMPOSE,
                "--project-name",
                self.project,
                "--env-file",
                str(self.env_file),
                *self.compose_files,
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"podman-compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        )
        return done

    # --- what is left of the project -----------------------------------------

    def containers(self, service=None, running_only=True):
        args = ["ps", "--format", "{{.Names}}", "--filter", f"label={PROJECT_LABEL}={self.project}"]
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        if not running_only:
            args.append("--all")
        return sorted(podman(*args).stdout.split())

    def networks(self):
        return self._listed("network", f"label={PROJECT_LABEL}={self.project}") | {
            name for name in self._listed("network") if name.startswith(self.project)
        }

    def volumes(self):
        return self._listed("volume", f"label={PROJECT_LABEL}={self.project}") | {
            name for name in self._listed("volume") if name.startswith(self.project)
        }

    def pods(self):
        return {name for name in self._listed("pod") if self.project in name}

    def _listed(self, kind, label_filter=None):
        args = [kind, "ls", "--format", "{{.Name}}"]
        if label_filter:
            args += ["--filter", label_filter]
        return set(podman(*args).stdout.split())

    # --- what a user sees ------------------------------------------------------

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("verify", self.verify)
        return requests.get(self.base_url + path, **kwargs)

    def post(self, path, token=True, **kwargs):
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("verify", self.verify)
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = "Bearer " + self.env["GATEWAY_TOKEN"]
        return requests.post(self.base_url + path, headers=headers, **kwargs)

    def healthy(self):
        try:
            return self.get("/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def logs(self, container):
        done = podman("logs", container, timeout=60)
        return done.stdout + done.stderr

    def processed_by(self, container):
        """The ids of the orders a processor container says it processed."""
        return {int(match) for match in PROCESSED_LINE.findall(self.logs(container))}

    def sql(self, query):
        """Rows of `query` on the pipeline's database, run by the mariadb
        client inside the database's container, as root."""
        (db,) = self.containers("db")
        done = podman(
            "exec",
            "-e",
            "MYSQL_PWD=" + self.env["DB_ROOT_PASSWORD"],
            db,
            "mariadb",
            "-uroot",
            "--batch",
            "--skip-column-names",
            "-e",
            query,
            self.env.get("DB_NAME", "orders"),
            timeout=60,
        )
        return [line.split("\t") for line in done.stdout.splitlines()]

    def scalar(self, query):
        return self.sql(query)[0][0]

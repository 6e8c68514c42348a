"""compose.cluster.yaml brought up for real by podman-compose, for
tests/compose/test_cluster.py: three RabbitMQ nodes, three Galera nodes
behind HAProxy, the provision step (every service's users, the migration)
and the three services, on the images compose.cluster.check.yaml names.

podman-compose 1.6 cannot honour the file's start-up order (it ignores
`service_healthy`, and the `--requires` chains it makes for depends_on
fail on podman 4.3), so `start` brings the services up with --no-deps, in
the order the depends_on say, and waits for each step as the healthchecks
would: the first broker and Galera node, then the others joined to them,
the proxy, the finished provision step, the services. The certificates are made
by deploy/tls/make-certs.sh where the compose file mounts them from, and
removed at the end.
"""

import json
import secrets
import shutil
import subprocess

from harness.processes import wait_until
from tests.compose.stack import PASSWORDS, ROOT, Stack, podman

CERTS = ROOT / "deploy" / "tls" / "certs"
BROKERS = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
GALERA = ["galera-1", "galera-2", "galera-3"]
START_SECONDS = 600


class ClusterStack(Stack):
    compose_files = ["-f", "compose.cluster.yaml", "-f", "compose.cluster.check.yaml"]
    # Made in __init__: Erlang takes the cookie from the command line, where
    # a leading "-" would be an option, so every secret is hex.
    passwords = []
    scheme = "https"
    verify = str(CERTS / "order_gateway" / "ca.pem")

    def __init__(self, directory, **settings):
        secret = {
            name: secrets.token_hex(24)
            for name in ["RABBITMQ_ERLANG_COOKIE", "GALERA_SST_PASSWORD", *PASSWORDS]
        }
        super().__init__(directory, **secret, **settings)

    # --- start-up and tear-down ---------------------------------------------

    def make_certificates(self):
        assert not CERTS.exists(), f"{CERTS} exists: move it away for the check"
        subprocess.run(
            [str(ROOT / "deploy" / "tls" / "make-certs.sh"), str(CERTS)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def remove_certificates(self):
        shutil.rmtree(CERTS, ignore_errors=True)

    def up(self, *services):
        self.compose("up", "-d", "--no-deps", *services)

    def start(self):
        self.up("rabbitmq-1", "galera-1")
        wait_until(lambda: self.broker_ready("rabbitmq-1"), START_SECONDS, 2, "rabbitmq-1")
        wait_until(lambda: self.galera_synced("galera-1"), START_SECONDS, 2, "galera-1")
        self.up("rabbitmq-2", "rabbitmq-3", "galera-2", "galera-3")
        wait_until(lambda: len(self.running_brokers()) == 3, START_SECONDS, 2, "3 brokers")
        wait_until(
            lambda: all(self.galera_synced(node) for node in GALERA), START_SECONDS, 2, "Galera"
        )
        self.up("db-proxy", "provision")
        (provision,) = self.containers("provision", running_only=False)
        assert podman("wait", provision, timeout=START_SECONDS).stdout.strip() == "0", self.logs(
            provision
        )
        self.up("generator", "processor", "gateway")
        wait_until(self.healthy, START_SECONDS, 1, "the gateway's /health")

    # --- the servers, from inside their containers ---------------------------

    def container(self, service):
        (name,) = self.containers(service, running_only=False)
        return name

    def broker_ready(self, service):
        done = podman(
            "exec",
            self.container(service),
            "rabbitmq-diagnostics",
            "-q",
            "check_running",
            timeout=60,
            check=False,
        )
        return done.returncode == 0

    def running_brokers(self):
        """The nodes rabbitmq-1 (or, while it is down, rabbitmq-2) sees running."""
        for service in BROKERS:
            done = podman(
                "exec",
                self.container(service),
                "rabbitmqctl",
                "cluster_status",
                "--formatter",
                "json",
                timeout=60,
                check=False,
            )
            if done.returncode == 0:
                return json.loads(done.stdout)["running_nodes"]
        return []

    def broker_users(self):
        """The user of every client connection the broker cluster has."""
        for service in BROKERS:
            done = podman(
                "exec",
                self.container(service),
                "rabbitmqctl",
                "list_connections",
                "user",
                "--formatter",
                "json",
                timeout=60,
                check=False,
            )
            if done.returncode == 0:
                return [connection["user"] for connection in json.loads(done.stdout)]
        raise AssertionError("no broker node lists its connections")

    def client_listeners(self, service):
        """(protocol, port) of each listener of a broker node but its
        clustering one."""
        done = podman(
            "exec",
            self.container(service),
            "rabbitmq-diagnostics",
            "-q",
            "listeners",
            "--formatter",
            "json",
            timeout=60,
        )
        return {
            (listener["protocol"], listener["port"])
            for listener in json.loads(done.stdout)["listeners"]
            if listener["protocol"] != "clustering"
        }

    def database_users(self):
        """The users of the clients connected over the network to galera-1,
        the node the proxy passes them to, but its health checks'."""
        rows = self.sql(
            "SELECT DISTINCT USER FROM information_schema.PROCESSLIST "
            "WHERE HOST LIKE '%:%' AND USER NOT IN ('haproxy_check', 'unauthenticated user')"
        )
        return {user for (user,) in rows}

    def mariadb(self, service, query, database=""):
        done = podman(
            "exec",
            "-e",
            "MYSQL_PWD=" + self.env["DB_ROOT_PASSWORD"],
            self.container(service),
            "mariadb",
            "-uroot",
            "--batch",
            "--skip-column-names",
            "-e",
            query,
            *([database] if database else []),
            timeout=60,
            check=False,
        )
        return done

    def galera_synced(self, service):
        done = self.mariadb(service, "SHOW STATUS LIKE 'wsrep_local_state_comment'")
        return done.returncode == 0 and done.stdout.split() == [
            "wsrep_local_state_comment",
            "Synced",
        ]

    def sql(self, query):
        """Rows of `query` on the pipeline's database, on galera-1."""
        done = self.mariadb("galera-1", query, self.env.get("DB_NAME", "orders"))
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines()]

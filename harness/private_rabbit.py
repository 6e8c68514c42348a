"""A RabbitMQ node of the suite's own, to stop and start at will.

The machine's RabbitMQ (5672) serves other test runs, so the scenarios that
stop a broker run against nodes of their own: a name, AMQP and distribution
ports, Erlang cookie (a private HOME), config, and data in a temporary
directory. A node runs in the foreground as a child process of the test run,
in its own process group, so stopping it can never touch the shared node.
Cluster nodes (harness.rabbit_cluster) share one HOME, hence one cookie.
"""

import os
import subprocess
import uuid

from kombu import Connection

from harness.ports import free_port
from harness.private_server import PrivateServer

# The Debian wrapper in /usr/sbin re-runs itself as the rabbitmq user, which
# would use the shared node's cookie and directories; the real scripts do not.
RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"


class PrivateRabbit(PrivateServer):
    name = "RabbitMQ"

    def __init__(
        self,
        base_dir,
        node=None,
        home=None,
        port=None,
        dist_port=None,
        extra_config="",
        management=False,
    ):
        super().__init__(base_dir, "rabbit.log")
        self.node = node or f"faults_{uuid.uuid4().hex[:8]}@localhost"
        self.home = home or self._path("home")
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        # The management plugin's HTTP API on a port of its own (the
        # machine's node has no plugin enabled, and must keep it so).
        self.management_url = None
        plugins = []
        if management:
            management_port = free_port()
            self.management_url = f"http://guest:guest@127.0.0.1:{management_port}/"
            extra_config += (
                f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {management_port}\n"
            )
            plugins.append("rabbitmq_management")
        self._write_files(extra_config, plugins)

    def _path(self, name):
        return os.path.join(self.base_dir, name)

    def _write_files(self, extra_config, plugins):
        os.makedirs(self.home, exist_ok=True)
        with open(self._path("rabbitmq-env.conf"), "w") as env_file:
            env_file.write('export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
        with open(self._path("rabbitmq.conf"), "w") as conf:
            conf.write(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
            conf.write("loopback_users = none\n")
            conf.write(extra_config)
        with open(self._path("enabled_plugins"), "w") as enabled:
            enabled.write(f"[{','.join(plugins)}].\n")

    def env(self):
        env = super().env()
        env.update(
            {
                "HOME": self.home,  # its .erlang.cookie
                "RABBITMQ_CONF_ENV_FILE": self._path("rabbitmq-env.conf"),
                "RABBITMQ_CONFIG_FILE": self._path("rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": self._path("enabled_plugins"),
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": self._path("mnesia"),
                "RABBITMQ_LOG_BASE": self._path("log"),
                "RABBITMQ_PID_FILE": self._path("rabbit.pid"),
                "RABBITMQ_LOGS": "-",
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                # No busy-waiting schedulers: on a shared machine they burn
                # CPU that the other nodes and the services need.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+sbwt none +sbwtdcpu none +sbwtdio none",
            }
        )
        return env

    def command(self):
        return [os.path.join(RABBITMQ_BIN, "rabbitmq-server")]

    def answers(self):
        connection = Connection(self.amqp_uri, connect_timeout=1)
        try:
            connection.ensure_connection(max_retries=1)
            return True
        except Exception:  # not up yet
            return False
        finally:
            connection.release()

    def ctl(self, *args, timeout=60):
        """`rabbitmqctl -n <this node> ARGS` with this node's cookie; its
        standard output."""
        return subprocess.run(
            [os.path.join(RABBITMQ_BIN, "rabbitmqctl"), "-q", "-n", self.node, *args],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout

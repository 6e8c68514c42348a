"""A RabbitMQ node of the suite's own, to stop and start at will.

The machine's RabbitMQ (5672) serves other test runs, so the broker-restart
scenario runs against a second node: its own name, AMQP and distribution
ports, Erlang cookie (a private HOME), config, and data in a temporary
directory. It runs in the foreground as a child process of the test run, in
its own process group, so stopping it can never touch the shared node.
"""

import os
import uuid

from kombu import Connection

from harness.processes import free_port
from tests.faults.private_server import PrivateServer

# The Debian wrapper in /usr/sbin re-runs itself as the rabbitmq user, which
# would use the shared node's cookie and directories; the real scripts do not.
RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"


class PrivateRabbit(PrivateServer):
    name = "RabbitMQ"

    def __init__(self, base_dir):
        super().__init__(base_dir, "rabbit.log")
        self.node = f"faults_{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._write_files()

    def _path(self, name):
        return os.path.join(self.base_dir, name)

    def _write_files(self):
        os.makedirs(self._path("home"), exist_ok=True)
        with open(self._path("rabbitmq-env.conf"), "w") as env_file:
            env_file.write('export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
        with open(self._path("rabbitmq.conf"), "w") as conf:
            conf.write(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
            conf.write("loopback_users = none\n")
        with open(self._path("enabled_plugins"), "w") as plugins:
            plugins.write("[].\n")

    def env(self):
        env = super().env()
        env.update(
            {
                "HOME": self._path("home"),  # its own .erlang.cookie
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

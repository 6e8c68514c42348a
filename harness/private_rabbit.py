"""A RabbitMQ node of the suite's own, to stop and start at will.

The machine's RabbitMQ (5672) serves other test runs, so the scenarios that
stop a broker run against nodes of their own: a name, AMQP and distribution
ports, Erlang cookie (a private HOME), config, and data in a temporary
directory. A node runs in the foreground as a child process of the test run,
in its own process group, so stopping it can never touch the shared node.
Cluster nodes (harness.rabbit_cluster) share one HOME, hence one cookie.

With `tls` (harness.certificates.Certificates) the node listens for AMQPS
only, presents the server certificate, and lets a client with a certificate
from the same CA log in as its common name (RabbitMQ's EXTERNAL mechanism,
from the rabbitmq_auth_mechanism_ssl plugin shipped with RabbitMQ); guest
and a password still work too. With `management` as well, the management
API is HTTPS only, with the server certificate, and wants a client
certificate from the same CA, as compose.cluster.yaml's nodes do.
"""

import os
import subprocess
import uuid

from harness.ports import free_port
from harness.private_server import PrivateServer
from order_pipeline.broker import Broker
from order_pipeline.tls import TlsFiles

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
        tls=None,
    ):
        super().__init__(base_dir, "rabbit.log")
        self.node = node or f"faults_{uuid.uuid4().hex[:8]}@localhost"
        self.home = home or self._path("home")
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.tls = tls
        if tls is None:
            self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        else:
            # The name the server certificate holds.
            self.amqp_uri = f"amqps://guest:guest@localhost:{self.port}/"
        # The management plugin's HTTP API on a port of its own (the
        # machine's node has no plugin enabled, and must keep it so).
        self.management_url = None
        plugins = [] if tls is None else ["rabbitmq_auth_mechanism_ssl"]
        if management:
            management_port = free_port()
            if tls is None:
                self.management_url = f"http://guest:guest@127.0.0.1:{management_port}/"
                extra_config += (
                    f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {management_port}\n"
                )
            else:
                self.management_url = f"https://guest:guest@localhost:{management_port}/"
                extra_config += self._management_tls_config(management_port)
            plugins.append("rabbitmq_management")
        self._write_files(extra_config, plugins)

    def broker(self):
        """How a client reaches this node: AMQP_URI, and the CA to trust."""
        files = None if self.tls is None else TlsFiles(ca_file=self.tls.ca.cert)
        return Broker(self.amqp_uri, files)

    def _path(self, name):
        return os.path.join(self.base_dir, name)

    def _write_files(self, extra_config, plugins):
        os.makedirs(self.home, exist_ok=True)
        with open(self._path("rabbitmq-env.conf"), "w") as env_file:
            env_file.write('export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
        with open(self._path("rabbitmq.conf"), "w") as conf:
            if self.tls is None:
                conf.write(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
            else:
                conf.write(self._tls_config())
            conf.write("loopback_users = none\n")
            conf.write(extra_config)
        with open(self._path("enabled_plugins"), "w") as enabled:
            enabled.write(f"[{','.join(plugins)}].\n")

    def _tls_config(self):
        return "".join(
            line + "\n"
            for line in (
                "listeners.tcp = none",
                f"listeners.ssl.default = 127.0.0.1:{self.port}",
                f"ssl_options.cacertfile = {self.tls.ca.cert}",
                f"ssl_options.certfile = {self.tls.server.cert}",
                f"ssl_options.keyfile = {self.tls.server.key}",
                # A client certificate is checked if one is sent, not required.
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = false",
                "auth_mechanisms.1 = PLAIN",
                "auth_mechanisms.2 = AMQPLAIN",
                "auth_mechanisms.3 = EXTERNAL",
                "ssl_cert_login_from = common_name",
            )
        )

    def _management_tls_config(self, port):
        return "".join(
            line + "\n"
            for line in (
                "management.ssl.ip = 127.0.0.1",
                f"management.ssl.port = {port}",
                f"management.ssl.cacertfile = {self.tls.ca.cert}",
                f"management.ssl.certfile = {self.tls.server.cert}",
                f"management.ssl.keyfile = {self.tls.server.key}",
                "management.ssl.verify = verify_peer",
                "management.ssl.fail_if_no_peer_cert = true",
            )
        )

    def add_certificate_user(self, name, vhost="/"):
        """A user with no password, who may do anything in `vhost`: the
        one a client certificate whose common name is `name` logs in as."""
        self.ctl("add_user", name, uuid.uuid4().hex)
        self.ctl("clear_password", name)
        self.ctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")

    def env(self):
        env = super().env()
        env.update(
            {
                "HOME": self.home,  # its .erlang.cookie
                "RABBITMQ_CONF_ENV_FILE": self._path("rabbitmq-env.conf"),
                "RABBITMQ_CONFIG_FILE": self._path("rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": self._path("enabled_plugins"),
                "RABBITMQ_NODENAME": self.node,
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
        if self.tls is None:
            # (It would also open a plain listener next to the TLS one.)
            env["RABBITMQ_NODE_PORT"] = str(self.port)
        return env

    def command(self):
        return [os.path.join(RABBITMQ_BIN, "rabbitmq-server")]

    def answers(self):
        connection = self.broker().connection(connect_timeout=1)
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

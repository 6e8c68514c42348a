"""The clusters of harness.clusters, each node in a network namespace of its
own (harness.netns), for the partition suite (tests/partitions).

Three RabbitMQ nodes `rabbit@<address>` (long names), each listening on its
namespace's address, `pause_minority` and a net tick time of 10 s as
deploy/rabbitmq/rabbitmq.conf sets them; three Galera nodes with the durability settings
of deploy/galera/galera.cnf; HAProxy in the root namespace on the bridge's
address, where the services' namespaces reach it. The services run in
namespaces of their own (`SERVICE_NAMESPACES`), so a link between any two
parts can be cut while every process keeps running.

`running_partition_clusters()` removes everything however its block ends,
and first removes what a killed earlier run left (harness.netns).
"""

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from urllib.parse import quote

from harness import leftovers
from harness.clusters import Clusters
from harness.galera_cluster import DEPLOY, GaleraCluster, GaleraNode, deployed_settings
from harness.galera_proxy import GaleraProxy
from harness.mariadb_server import MARIADBD
from harness.netns import Network, remove_leftovers
from harness.private_rabbit import RABBITMQ_BIN, PrivateRabbit
from harness.rabbit_cluster import RabbitCluster, run_in_parallel

PREFIX = "orders_partitions_"
AMQP_PORT = 5672
# The services' namespaces: the generator, the processors and the gateway.
SERVICE_NAMESPACES = {
    "generator_service": "gen",
    "processor_service": "proc",
    "gateway": "gw",
}
# Galera's ports, the same in every namespace: SQL, group communication,
# incremental and full state transfers.
GALERA_PORTS = (3306, 4567, 4568, 4444)


# How the nodes meet a partition, as deploy/rabbitmq/rabbitmq.conf says
# (pause_minority, and the net tick time), read from there.
PARTITION_SETTINGS = deployed_settings(
    os.path.join(DEPLOY, "rabbitmq", "rabbitmq.conf"),
    ("cluster_partition_handling", "net_ticktime"),
)


class NetnsRabbit(PrivateRabbit):
    """A node in namespace `name` (already on the network)."""

    def __init__(self, base_dir, network, name, home, extra_config):
        self.network = network
        self.namespace_name = name
        self.address = network.address(name)
        super().__init__(
            base_dir,
            node=f"rabbit@{self.address}",
            home=home,
            port=AMQP_PORT,
            dist_port=25672,
            extra_config=extra_config,
        )
        self.amqp_uri = f"amqp://guest:guest@{self.address}:{AMQP_PORT}/"

    def _write_files(self, extra_config, plugins):
        os.makedirs(self.home, exist_ok=True)
        with open(self._path("rabbitmq-env.conf"), "w"):
            pass
        with open(self._path("rabbitmq.conf"), "w") as conf:
            conf.write(f"listeners.tcp.default = {AMQP_PORT}\nloopback_users = none\n")
            conf.write(extra_config)
        with open(self._path("enabled_plugins"), "w") as enabled:
            enabled.write("[].\n")

    def env(self):
        env = super().env()
        env.pop("ERL_EPMD_ADDRESS")  # epmd on the namespace's address
        env["RABBITMQ_USE_LONGNAME"] = "true"
        return env

    def command(self):
        return [*self.network.exec_prefix(self.namespace_name), *super().command()]

    def ctl(self, *args, timeout=60):
        return subprocess.run(
            [
                *self.network.exec_prefix(self.namespace_name),
                os.path.join(RABBITMQ_BIN, "rabbitmqctl"),
                "-q",
                "-l",
                "-n",
                self.node,
                *args,
            ],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout


class NetnsRabbitCluster(RabbitCluster):
    def __init__(self, base_dir, network, size=3):
        self.base_dir = base_dir
        self.home = os.path.join(base_dir, "home")
        os.makedirs(self.home)
        cookie = os.path.join(self.home, ".erlang.cookie")
        with open(cookie, "w") as cookie_file:
            cookie_file.write(os.urandom(16).hex())
        os.chmod(cookie, 0o400)
        names = [f"rabbit{index}" for index in range(1, size + 1)]
        addresses = [network.add(name) for name in names]
        discovery = "cluster_formation.peer_discovery_backend = classic_config\n" + "".join(
            f"cluster_formation.classic_config.nodes.{i} = rabbit@{address}\n"
            for i, address in enumerate(addresses, 1)
        )
        discovery += "".join(f"{key} = {value}\n" for key, value in PARTITION_SETTINGS.items())
        self.nodes = []
        for name in names:
            node_dir = os.path.join(base_dir, name)
            os.makedirs(node_dir)
            self.nodes.append(NetnsRabbit(node_dir, network, name, self.home, discovery))

    def amqp_uri(self, vhost="/"):
        path = quote(vhost, safe="")
        return ";".join(
            f"amqp://guest:guest@{node.address}:{AMQP_PORT}/{path}" for node in self.nodes
        )

    def node_uri(self, node, vhost="/"):
        return f"amqp://guest:guest@{node.address}:{AMQP_PORT}/{quote(vhost, safe='')}"


class NetnsGaleraNode(GaleraNode):
    def __init__(self, base_dir, index, network, cluster_address, address):
        self.network = network
        self.namespace_name = f"galera{index}"
        super().__init__(base_dir, index, GALERA_PORTS, cluster_address, host=address)

    def command(self):
        return [*self.network.exec_prefix(self.namespace_name), *super().command()]

    def install(self):
        """As MariaDBServer's, and root may log in from any address (the
        services, HAProxy and the tests reach the node over the bridge):
        a copy of root@localhost's grant, written before the first start."""
        super().install()
        subprocess.run(
            [MARIADBD, f"--defaults-file={self.config}", "--bootstrap", "--wsrep-on=OFF"],
            input="INSERT INTO mysql.global_priv SELECT '%', User, Priv FROM mysql.global_priv"
            " WHERE Host = 'localhost' AND User = 'root';\n",
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )


class NetnsGaleraCluster(GaleraCluster):
    def __init__(self, base_dir, network, size=3):
        self.base_dir = base_dir
        os.makedirs(base_dir)
        os.chmod(os.path.dirname(base_dir), 0o755)  # see GaleraCluster
        addresses = [network.add(f"galera{index}") for index in range(1, size + 1)]
        cluster_address = ",".join(f"{address}:{GALERA_PORTS[1]}" for address in addresses)
        self.nodes = []
        for index, address in enumerate(addresses, 1):
            node_dir = os.path.join(base_dir, f"galera{index}")
            os.makedirs(node_dir)
            self.nodes.append(NetnsGaleraNode(node_dir, index, network, cluster_address, address))

    def server_uri(self, node):
        return f"mysql+pymysql://root@{node.host}:{node.port}/"


class PartitionClusters(Clusters):
    """Clusters (same parts, same interface) on a private network, plus the
    services' namespaces."""

    def __init__(self, base_dir, network):
        self.base_dir = base_dir
        self.network = network
        self.rabbit = NetnsRabbitCluster(f"{base_dir}/rabbit", network)
        self.galera = NetnsGaleraCluster(f"{base_dir}/galera", network)
        self.proxy = GaleraProxy(base_dir, self.galera.nodes, host=network.root_address)
        for namespace in SERVICE_NAMESPACES.values():
            network.add(namespace)

    def start(self):
        run_in_parallel([self.timed(self.rabbit), self.timed(self.galera)])
        self.timed(self.proxy)()
        return self

    def service_prefixes(self):
        return {
            module: self.network.exec_prefix(namespace)
            for module, namespace in SERVICE_NAMESPACES.items()
        }

    def gateway_address(self):
        return self.network.address(SERVICE_NAMESPACES["gateway"])


@contextmanager
def running_partition_clusters():
    """Yield started PartitionClusters; stop them, remove their network and
    delete their directory after."""
    remove_leftovers()
    leftovers.remove(tempfile.gettempdir(), PREFIX)
    base_dir = tempfile.mkdtemp(prefix=PREFIX)
    leftovers.claim(base_dir)
    network = None
    clusters = None
    done = threading.Event()

    def tear_down():
        if done.is_set():
            return
        done.set()
        try:
            if clusters is not None:
                clusters.network.heal()
                clusters.stop()
        finally:
            if network is not None:
                network.remove()
            shutil.rmtree(base_dir, ignore_errors=True)

    atexit.register(tear_down)
    try:
        network = Network()
        clusters = PartitionClusters(base_dir, network)
        started = time.monotonic()
        clusters.start()
        clusters.started_in = time.monotonic() - started
        yield clusters
    finally:
        tear_down()
        atexit.unregister(tear_down)

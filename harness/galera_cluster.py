"""Three MariaDB Galera nodes on this machine, after
/work/shared/recipes/galera-cluster-3-nodes.sh, with every port picked at run
time: the SQL port, the group-communication port (`base_port`), the port
that receives incremental state transfers (IST) and the one that receives
full ones (rsync SST).

Node 1 bootstraps the cluster (`--wsrep-new-cluster`, on its first start
only); the others join it. A node stopped later rejoins from the others
with IST (or SST if the others' gcache no longer holds what it missed).
A node counts as up once it is Synced (wsrep_local_state 4). The nodes run
as the mysql user, like the recipe's: as root, the rsync daemon of a state
transfer drops to `nobody`, which may not write the data directory.
"""

import os
import shutil
import subprocess

import pymysql

from harness.mariadb_server import MariaDBServer
from harness.ports import free_ports
from harness.rabbit_cluster import run_in_parallel

GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
SYNCED = "4"  # wsrep_local_state
DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy")


def deployed_settings(path, keys):
    """{key: value} of `keys` in a `key = value` file of deploy/ (a
    RabbitMQ or MariaDB config): the harness runs what is deployed."""
    settings = {}
    with open(path) as config:
        for line in config:
            key, _, value = line.partition("=")
            if key.strip() in keys:
                settings[key.strip()] = value.strip()
    missing = set(keys) - set(settings)
    if missing:
        raise LookupError(f"{sorted(missing)} not set in {path}")
    return settings


# Durability and consistency, as deploy/galera/galera.cnf sets them (the
# reasons are there and in docs/guarantees.md).
DURABILITY = deployed_settings(
    os.path.join(DEPLOY, "galera", "galera.cnf"),
    ("innodb_flush_log_at_trx_commit", "sync_binlog", "wsrep_sync_wait"),
)
START_SECONDS = 240


class GaleraNode(MariaDBServer):
    name = "Galera node"
    poll_seconds = 0.2

    def __init__(self, base_dir, index, ports, cluster_address, host="127.0.0.1"):
        port, gcomm_port, ist_port, sst_port = ports
        self.index = index
        self.node_name = f"node{index}"
        self.gcomm_address = f"{host}:{gcomm_port}"
        self.bootstrap = False
        options = f"base_port={gcomm_port};ist.recv_addr={host}:{ist_port};gcache.size=32M"
        super().__init__(
            base_dir,
            port,
            user="mysql",
            host=host,
            settings={
                **DURABILITY,
                "binlog_format": "ROW",
                "default_storage_engine": "InnoDB",
                "innodb_autoinc_lock_mode": 2,
                "innodb_buffer_pool_size": "64M",
                "wsrep_on": "ON",
                "wsrep_provider": GALERA_PROVIDER,
                "wsrep_cluster_name": "orders_cluster",
                "wsrep_cluster_address": f"gcomm://{cluster_address}",
                "wsrep_node_name": self.node_name,
                "wsrep_node_address": self.gcomm_address,
                "wsrep_provider_options": f'"{options}"',
                "wsrep_sst_method": "rsync",
                "wsrep_sst_receive_address": f"{host}:{sst_port}",
            },
        )

    def hand_to_mysql(self):
        subprocess.run(["chown", "-R", "mysql:mysql", self.base_dir], check=True, timeout=60)

    def command(self):
        command = super().command()
        if self.bootstrap:
            command.append("--wsrep-new-cluster")
        return command

    def answers(self):
        try:
            return self.status().get("wsrep_local_state") == SYNCED
        except pymysql.MySQLError:  # not up (or not answering) yet
            return False

    def status(self):
        """{variable: value} of the node's wsrep_% status."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                # A status read needs no causal wait (nor can a node that
                # is not Synced give one).
                cursor.execute("SET SESSION wsrep_sync_wait = 0")
                cursor.execute("SHOW GLOBAL STATUS LIKE 'wsrep_%%'")
                return dict(cursor.fetchall())
        finally:
            connection.close()


class GaleraCluster:
    def __init__(self, base_dir, size=3):
        self.base_dir = base_dir
        os.makedirs(base_dir)
        # mariadbd runs as mysql (user=mysql), and so does the rsync daemon
        # that receives a state transfer: it must be able to reach its node's
        # directory (mkdtemp makes the top directory 0700).
        top = os.path.dirname(base_dir)
        os.chmod(top, 0o755)
        ports = free_ports(4 * size)
        node_ports = [ports[4 * index : 4 * index + 4] for index in range(size)]
        cluster_address = ",".join(f"127.0.0.1:{p[1]}" for p in node_ports)
        self.nodes = []
        for index, port_set in enumerate(node_ports, 1):
            node_dir = os.path.join(base_dir, f"galera{index}")
            os.makedirs(node_dir)
            self.nodes.append(GaleraNode(node_dir, index, port_set, cluster_address))

    def start(self):
        """Install node 1's data directory and copy it to the others (what
        their first state transfer would replace anyway), bootstrap node 1,
        then start the others together."""
        first, others = self.nodes[0], self.nodes[1:]
        first.hand_to_mysql()
        first.install()
        for node in others:
            shutil.copytree(first.datadir, node.datadir)
            node.hand_to_mysql()
        first.bootstrap = True
        first.start(START_SECONDS)
        first.bootstrap = False  # a later restart joins the running cluster
        for node in others:
            node.launch()
        run_in_parallel([lambda node=node: node.wait_answering(START_SECONDS) for node in others])
        return self

    def stop(self):
        for node in self.nodes:
            node.stop()

    def node_named(self, name):
        return next(node for node in self.nodes if node.node_name == name)

    def server_uri(self, node):
        return f"mysql+pymysql://root@127.0.0.1:{node.port}/"

"""Three RabbitMQ nodes clustered on this machine, each a PrivateRabbit with
ports picked at run time and one Erlang cookie (a private HOME) between them.

Node 1 starts first; nodes 2 and 3 then start together and join it at boot
(peer discovery from the config file, `classic_config`), which saves the
`rabbitmqctl stop_app/join_cluster/start_app` round trips of
/work/shared/recipes/rabbitmq-cluster-3-nodes.sh. A node stopped later keeps
its membership and rejoins by itself when started again.
"""

import os
import secrets
import threading
import uuid
from urllib.parse import quote

from harness.ports import free_ports
from harness.private_rabbit import PrivateRabbit

START_SECONDS = 180


def run_in_parallel(calls):
    """Run each zero-argument call in its own thread; re-raise the first
    error once all have ended."""
    errors = []

    def run(call):
        try:
            call()
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class RabbitCluster:
    def __init__(self, base_dir, size=3):
        self.base_dir = base_dir
        self.home = os.path.join(base_dir, "home")
        os.makedirs(self.home)
        # Written before any node starts: three nodes starting at once would
        # each try to create it.
        cookie = os.path.join(self.home, ".erlang.cookie")
        with open(cookie, "w") as cookie_file:
            cookie_file.write(secrets.token_hex(16))
        os.chmod(cookie, 0o400)
        run_id = uuid.uuid4().hex[:6]
        names = [f"orders_cluster_{run_id}_{index}@localhost" for index in range(1, size + 1)]
        discovery = "cluster_formation.peer_discovery_backend = classic_config\n" + "".join(
            f"cluster_formation.classic_config.nodes.{i} = {name}\n"
            for i, name in enumerate(names, 1)
        )
        ports = free_ports(2 * size)
        self.nodes = []
        for index, name in enumerate(names):
            node_dir = os.path.join(base_dir, f"rabbit{index + 1}")
            os.makedirs(node_dir)
            self.nodes.append(
                PrivateRabbit(
                    node_dir,
                    node=name,
                    home=self.home,
                    port=ports[2 * index],
                    dist_port=ports[2 * index + 1],
                    extra_config=discovery,
                )
            )

    def start(self):
        """Node 1, then the others at once (they find node 1 and join it:
        started together with it, each might form a cluster of its own)."""
        self.nodes[0].start(START_SECONDS)
        others = self.nodes[1:]
        for node in others:
            node.launch()
        run_in_parallel([lambda node=node: node.wait_answering(START_SECONDS) for node in others])
        running = set(self.ctl("eval", "rabbit_nodes:all_running().").strip("[]\n").split(","))
        expected = {node.node for node in self.nodes}
        if {name.strip().strip("'") for name in running} != expected:
            raise RuntimeError(f"RabbitMQ nodes did not form one cluster: {running}")
        return self

    def stop(self):
        for node in self.nodes:
            node.stop()

    def live_node(self):
        return next(node for node in self.nodes if node.running)

    def ctl(self, *args):
        """rabbitmqctl on any running node (cluster-wide commands)."""
        return self.live_node().ctl(*args)

    def amqp_uri(self, vhost="/"):
        """Every node's URI, `;`-separated (the failover list AMQP_URI takes)."""
        path = quote(vhost, safe="")
        return ";".join(f"amqp://guest:guest@127.0.0.1:{node.port}/{path}" for node in self.nodes)

    def node_uri(self, node, vhost="/"):
        return f"amqp://guest:guest@127.0.0.1:{node.port}/{quote(vhost, safe='')}"

    def add_vhost(self, vhost):
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost):
        self.ctl("delete_vhost", vhost)

    def queue_leader(self, vhost, queue):
        """The node that leads a quorum queue, from `rabbitmqctl
        list_queues name leader` (a classic queue has none)."""
        for line in self.ctl(
            "list_queues", "-p", vhost, "name", "leader", "--no-table-headers"
        ).splitlines():
            fields = line.split("\t")
            if len(fields) == 2 and fields[0] == queue:
                if not fields[1].strip():
                    raise LookupError(f"queue {queue!r} has no leader: not a quorum queue")
                return self.node_named(fields[1].strip())
        raise LookupError(f"no queue {queue!r} in vhost {vhost!r}")

    def node_named(self, name):
        return next(node for node in self.nodes if node.node == name)

"""The pipeline on the partition clusters: the cluster suite's system
(tests/cluster/system.py: a generator, two processors and the gateway, a
database and vhost of its own) with each service in its network namespace,
the load of tests/partitions/load.py, and one nemesis run from first order
to verdict."""

import os
import time
from collections import Counter

import eventlet
from sqlalchemy import text

from harness.broker import HANDLER_QUEUE, queue_depth
from harness.processes import wait_until
from harness.tables import sql_metrics
from order_contract import DEAD_LETTER_QUEUE, GENERATOR, PROCESSOR
from order_pipeline.extensions.reliable_events import retry_delays
from order_pipeline.queues import retry_queue
from tests.cluster.system import RECOVERY_SECONDS, ClusterSystem
from tests.faults.ledger import execution_lines
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import set_generation
from tests.partitions.checker import Observed, check
from tests.partitions.history import History
from tests.partitions.load import Load
from tests.partitions.nemeses import NEMESES

# A retried event waits at most this long: the backlog a fault leaves is
# then retried within seconds of the heal, not RETRY_MAX_DELAY_SECONDS' 30.
RETRY_MAX_DELAY_SECONDS = 5
# Every queue the services declare, but their reply queues (each consumed
# by its service for as long as it runs).
PIPELINE_QUEUES = [
    HANDLER_QUEUE,
    DEAD_LETTER_QUEUE,
    f"rpc-{GENERATOR}",
    f"rpc-{PROCESSOR}",
    *(
        retry_queue(HANDLER_QUEUE, delay, "quorum").name
        for delay in retry_delays(0.5, RETRY_MAX_DELAY_SECONDS)
    ),
]
# Load before the fault, so that it strikes a busy pipeline.
WARM_SECONDS = 3
# How long the RabbitMQ cluster may take to mend by itself after a heal.
SPLIT_GRACE_SECONDS = 30


class PartitionSystem(ClusterSystem):
    def __init__(self, clusters, log_dir):
        super().__init__(
            clusters,
            log_dir,
            host=clusters.gateway_address(),
            prefixes=clusters.service_prefixes(),
            RETRY_MAX_DELAY_SECONDS=RETRY_MAX_DELAY_SECONDS,
        )
        self.network = clusters.network
        self.history = History(os.path.join(log_dir, "history.jsonl"))
        self.notes = []

    def note(self, line):
        self.notes.append(line)
        print(line)

    def run(self, nemesis, seconds):
        """The load, the nemesis, the heal; then generation off, the drain,
        and the checker's verdict."""
        load = Load(self.pipeline, self.history).start()
        try:
            eventlet.sleep(WARM_SECONDS)
            failover = NEMESES[nemesis](self, seconds)
            healed_at, processed_at_heal = time.monotonic(), self.ledger.processed()
            wait_until(
                lambda: self.ledger.processed() > processed_at_heal,
                RECOVERY_SECONDS,
                interval=0.2,
                message="an order processed after the heal",
            )
            heal_to_first = time.monotonic() - healed_at
            self.wait_whole()
        finally:
            load.stop()
        set_generation(self.amqp_uri, False)
        self.ledger.wait_drained(self.amqp_uri, timeout=RECOVERY_SECONDS)
        wait_until(self.queues_empty, RECOVERY_SECONDS, interval=0.5, message="queues empty")
        return check(nemesis, self.history.ops, self.observe(), heal_to_first, failover)

    def wait_whole(self):
        """Every RabbitMQ node running in one cluster, every Galera node
        Synced and UP in HAProxy.

        A RabbitMQ node that no other node sees running
        SPLIT_GRACE_SECONDS after the heal is restarted (`stop_app`,
        `start_app`), as an operator would: after a pause, pause_minority
        leaves the cluster split (docs/guarantees.md#what-was-found). Each
        restart is noted, and counted in the table."""
        deadline = time.monotonic() + SPLIT_GRACE_SECONDS
        while not self.rabbit_whole():
            if time.monotonic() > deadline:
                for node in self.rabbit_split():
                    self.note(f"{node.node} split from the others after the heal: restarting it")
                    node.ctl("stop_app", timeout=120)
                    node.ctl("start_app", timeout=120)
                break
            eventlet.sleep(1)
        wait_until(self.rabbit_whole, RECOVERY_SECONDS, interval=1, message="RabbitMQ whole")
        self.wait_clusters_whole()

    def running_seen_by(self, node):
        """The names of the nodes `node` sees running (none if it does not
        answer)."""
        try:
            answer = node.ctl("eval", "rabbit_nodes:all_running().", timeout=30)
        except Exception:  # not answering (yet)
            return set()
        return {name.strip().strip("'") for name in answer.strip().strip("[]").split(",")}

    def rabbit_whole(self):
        nodes = self.clusters.rabbit.nodes
        everyone = {node.node for node in nodes}
        return all(self.running_seen_by(node) == everyone for node in nodes)

    def rabbit_split(self):
        """The nodes that no other node sees running."""
        nodes = self.clusters.rabbit.nodes
        seen = {node: self.running_seen_by(node) for node in nodes}
        return [
            node
            for node in nodes
            if not any(node.node in seen[other] for other in nodes if other is not node)
        ]

    def queue_depths(self):
        """Messages ready on each of the pipeline's queues (the clients'
        own reply queues may hold late replies to calls they gave up on:
        not the pipeline's, and not counted)."""
        return {name: queue_depth(self.amqp_uri, name) for name in PIPELINE_QUEUES}

    def queues_empty(self):
        return not any(self.queue_depths().values())

    def observe(self):
        with self.ledger.engine.connect() as connection:
            orders = dict(connection.execute(text("SELECT id, quantity FROM orders")).all())
            processed = Counter(
                connection.execute(text("SELECT order_id FROM order_process")).scalars()
            )
        letters = self.pipeline.get("/dead-letters").json()["dead_letters"]
        return Observed(
            orders=orders,
            processed=processed,
            executions=execution_lines(processor_outputs(self.pipeline)),
            totals_count=self.ledger.totals_count(),
            metrics_equal_sql=metrics(self.pipeline) == sql_metrics(self.db_uri),
            dead_letters=[(letter.get("order_id"), letter.get("reason")) for letter in letters],
            queue_depths=self.queue_depths(),
            outbox=self.ledger.outbox_size(),
        )

"""The pipeline as a user would run it on the clusters: a generator, two
processors and the gateway as `nameko run` processes, QUEUE_TYPE=quorum,
AMQP_URI listing the three RabbitMQ nodes, DB_URI through HAProxy; each
scenario in a database and vhost of its own."""

import signal
import time

from sqlalchemy.exc import DBAPIError

from harness.broker import HANDLER_QUEUE, queue_depth, vhost_of
from harness.clusters import ClusterServers
from harness.processes import Pipeline, wait_until
from order_contract import DEAD_LETTER_QUEUE
from tests.cluster import figures
from tests.faults.ledger import FaultEnd, Ledger, audit, execution_lines
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import set_generation

ORDER_INTERVAL_SECONDS = 0.1
# Generous: every deadline here is a bound on a wait, not a measurement.
START_SECONDS = 180
FAILOVER_SECONDS = 120
RECOVERY_SECONDS = 180
# Failing queries are retried this long: the ledger reads through HAProxy,
# which drops its connections when the node behind them goes.
QUERY_RETRY_SECONDS = 60


class ClusterLedger(Ledger):
    """The fault suite's ledger, reading through HAProxy and riding out the
    moments when the node behind it goes and the proxy drops connections."""

    def scalar(self, statement, **params):
        deadline = time.monotonic() + QUERY_RETRY_SECONDS
        while True:
            try:
                return super().scalar(statement, **params)
            except DBAPIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def processed_after(self, last_order_id):
        return self.scalar(
            "SELECT COUNT(*) FROM order_process WHERE order_id > :last", last=last_order_id
        )


class ClusterSystem:
    """`pipeline_options`: more of harness.processes.Pipeline's arguments
    (where the services run, extra settings)."""

    def __init__(self, clusters, log_dir, **pipeline_options):
        self.clusters = clusters
        self.servers = ClusterServers(clusters)
        self.db_uri = self.servers.create_database()
        self.amqp_uri = self.servers.create_vhost()
        self.vhost = vhost_of(self.amqp_uri)
        self.pipeline = Pipeline(
            self.db_uri,
            self.amqp_uri,
            log_dir,
            **self.servers.settings,
            **{
                "ORDER_INTERVAL_SECONDS": ORDER_INTERVAL_SECONDS,
                "RPC_TIMEOUT_SECONDS": 10,
                **pipeline_options,
            },
        )
        self.ledger = ClusterLedger(self.db_uri)
        self.processors = []

    def start(self):
        pipeline = self.pipeline
        pipeline.generator = pipeline.start_service("generator_service")
        self.processors = [pipeline.start_service("processor_service") for _ in range(2)]
        pipeline.gateway = pipeline.start_service("gateway")
        pipeline.wait_healthy(START_SECONDS)
        wait_until(lambda: self.ledger.processed() >= 10, START_SECONDS, message="orders flowing")
        return self

    def restart_processor(self, index):
        self.processors[index] = self.pipeline.start_service("processor_service")
        return self.processors[index]

    def close(self):
        try:
            self.pipeline.stop()
        finally:
            self.ledger.close()
            try:
                self.servers.drop_vhost(self.amqp_uri)
            finally:
                self.servers.drop_database(self.db_uri)

    # --- the scenario's steps -------------------------------------------

    def event_queue_leader(self):
        """The RabbitMQ node that leads the processor's event queue."""
        return self.clusters.rabbit.queue_leader(self.vhost, HANDLER_QUEUE)

    def galera_writer(self):
        """The Galera node that new connections through HAProxy reach."""
        return self.clusters.galera.node_named(self.clusters.proxy.writer())

    def fault_started(self):
        return FaultEnd(time.monotonic(), self.ledger.last_order_id())

    def wait_failover(self, fault_start, orders=5):
        """Seconds from the fault's start until `orders` orders committed
        after it have been processed (the node still down)."""
        try:
            wait_until(
                lambda: self.ledger.processed_after(fault_start.last_order_id) >= orders,
                FAILOVER_SECONDS,
                interval=0.2,
                message=f"{orders} orders committed after the fault processed",
            )
        except AssertionError:
            # Each service logs where its greenthreads wait (see
            # order_pipeline.extensions.containers), for the logs kept in
            # the test's tmp_path.
            for process in self.pipeline.processes:
                process.signal(signal.SIGUSR1)
            raise
        return time.monotonic() - fault_start.at

    def wait_clusters_whole(self):
        """Every node running again and Synced, and HAProxy sending to it."""
        wait_until(
            self.clusters.proxy.answers,
            RECOVERY_SECONDS,
            interval=0.5,
            message="every Galera node UP in HAProxy",
        )

    def finish(self, scenario, fault_end, failover_seconds):
        """Wait for recovery, stop generation, drain, then the audit."""
        recovery = self.ledger.wait_recovered(fault_end, timeout=RECOVERY_SECONDS)
        self.pipeline.wait_healthy(START_SECONDS)
        set_generation(self.amqp_uri, False)
        self.ledger.wait_drained(self.amqp_uri, timeout=RECOVERY_SECONDS)
        recorded = []
        audit(
            scenario,
            self.ledger,
            metrics(self.pipeline),
            processor_outputs(self.pipeline),
            recovery,
            recorded,
        )
        figures.record(recorded[0], failover_seconds)
        # A passive declare: rabbitmqctl's counts for a quorum queue can lag.
        assert queue_depth(self.amqp_uri, DEAD_LETTER_QUEUE) == 0, "dead letters"
        assert self.pipeline.get("/dead-letters").json()["count"] == 0

    def executions_by(self, process):
        return sum(execution_lines([process.output()]).values())

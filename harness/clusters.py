"""A 3-node RabbitMQ cluster and a 3-node MariaDB Galera cluster behind
HAProxy, on this machine, for the cluster suite (tests/cluster) and the
benchmark's cluster profile (`python -m bench --cluster`).

Everything lives in one temporary directory named orders_cluster_*: data,
logs, the Erlang cookie (a private HOME), configs. Ports are picked at run
time, so it runs beside the machine's own servers (5672, 3306), beside the
recipes' fixed ports and beside another run of itself. `running_clusters()`
stops every process and removes the directory however its block ends
(failure, KeyboardInterrupt, and at interpreter exit for a run that skips
its cleanup); the leftovers of a run that was killed outright are removed
by the next one (harness.leftovers).
"""

import atexit
import logging
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from harness import leftovers
from harness.broker import vhost_of
from harness.galera_cluster import GaleraCluster
from harness.galera_proxy import GaleraProxy
from harness.rabbit_cluster import RabbitCluster, run_in_parallel
from harness.sandbox import PREFIX as PREFIX_TEST
from harness.sandbox import drop_test_database, unique_name
from order_pipeline.commands.migrate import migrate

PREFIX = "orders_cluster_"
log = logging.getLogger(__name__)


class Clusters:
    def __init__(self, base_dir):
        self.base_dir = base_dir
        self.rabbit = RabbitCluster(f"{base_dir}/rabbit")
        self.galera = GaleraCluster(f"{base_dir}/galera")
        self.proxy = GaleraProxy(base_dir, self.galera.nodes)

    def start(self):
        run_in_parallel([self.timed(self.rabbit), self.timed(self.galera)])
        self.timed(self.proxy)()
        return self

    @staticmethod
    def timed(part):
        def start():
            started = time.monotonic()
            part.start()
            log.info("%s up in %.1f s", type(part).__name__, time.monotonic() - started)

        return start

    def stop(self):
        """Stop everything, each part even if another fails to stop."""
        errors = []
        for part in (self.proxy, self.galera, self.rabbit):
            try:
                part.stop()
            except Exception as exc:  # stop the rest, then report
                errors.append(exc)
        if errors:
            raise errors[0]


@contextmanager
def running_clusters():
    """Yield started Clusters; stop them and delete their directory after."""
    leftovers.remove(tempfile.gettempdir(), PREFIX)
    base_dir = tempfile.mkdtemp(prefix=PREFIX)
    leftovers.claim(base_dir)
    clusters = None
    done = threading.Event()

    def tear_down():
        if done.is_set():
            return
        done.set()
        try:
            if clusters is not None:
                clusters.stop()
        finally:
            shutil.rmtree(base_dir, ignore_errors=True)

    atexit.register(tear_down)
    try:
        clusters = Clusters(base_dir)
        clusters.start()
        yield clusters
    finally:
        tear_down()
        atexit.unregister(tear_down)


class ClusterServers:
    """The clusters as harness.sandbox.LocalServers: a database through
    HAProxy, a vhost on the RabbitMQ cluster with AMQP_URI listing every
    node, and QUEUE_TYPE=quorum."""

    settings = {"QUEUE_TYPE": "quorum"}

    def __init__(self, clusters):
        self.clusters = clusters

    def create_database(self):
        db_uri = make_url(self.clusters.proxy.server_uri).set(database=unique_name())
        db_uri = db_uri.render_as_string(hide_password=False)
        migrate(db_uri)
        return db_uri

    def drop_database(self, db_uri):
        drop_test_database(db_uri)

    def create_vhost(self):
        vhost = unique_name("vhost_")
        self.clusters.rabbit.add_vhost(vhost)
        return self.clusters.rabbit.amqp_uri(vhost)

    def drop_vhost(self, amqp_uri):
        vhost = vhost_of(amqp_uri)
        assert vhost.startswith(PREFIX_TEST), amqp_uri
        self.clusters.rabbit.delete_vhost(vhost)

    def rabbitmqctl(self, *args):
        return self.clusters.rabbit.ctl(*args)

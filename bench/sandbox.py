"""A throwaway database and vhost with the services running in them.

Reuses the test harness: `tests.support.infra` creates and drops the
database (migrated) and the vhost, and `tests.support.processes.Pipeline`
starts `nameko run` processes against them. Nothing outside the sandbox is
touched, and it is removed however the scenario ends.
"""
import os
import time
from contextlib import contextmanager

from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support import infra
from tests.support.processes import Pipeline, wait_until

STARTUP_TIMEOUT_SECONDS = 60


@contextmanager
def sandbox(log_dir, **settings):
    """Yield a Pipeline (no services started yet) on a new database and vhost."""
    os.makedirs(log_dir, exist_ok=True)
    db_uri = infra.create_test_database()
    try:
        amqp_uri = infra.create_test_vhost()
        try:
            pipeline = Pipeline(db_uri, amqp_uri, log_dir, **settings)
            try:
                yield pipeline
            finally:
                pipeline.stop()
        finally:
            infra.drop_test_vhost(amqp_uri)
    finally:
        infra.drop_test_database(db_uri)


def rpc_proxy(pipeline, timeout=10):
    """A standalone RPC proxy into the sandbox (use as a context manager)."""
    return ClusterRpcProxy({"AMQP_URI": pipeline.amqp_uri}, timeout=timeout)


def wait_for_rpc(pipeline, service, method, processes=()):
    """Wait until `service.method()` answers over RPC; fail early if one of
    `processes` has exited."""
    def answers():
        check_running(processes)
        try:
            with rpc_proxy(pipeline, timeout=5) as proxy:
                getattr(getattr(proxy, service), method)()
            return True
        except UnknownService:
            time.sleep(0.2)
            return False
    wait_until(answers, STARTUP_TIMEOUT_SECONDS, message="{}.{}".format(service, method))


def check_running(processes):
    """Fail, naming the log to read, if one of the processes has exited."""
    for process in processes:
        if not process.running:
            raise RuntimeError("{} exited; see {}".format(process.modules, process.log_path))

"""nameko's ServiceContainer, stopped once, and only once it has started.

`nameko run` starts a graceful stop for every SIGTERM it receives, in a
greenthread of its own. nameko's container then runs that stop through every
extension at once with whatever else is under way, and several extensions
cannot stop twice (the timer fails, the queue consumer waits forever for a
consumer thread that has gone), nor before they have started (a SIGTERM
while the container was still starting left the process hanging). Here a
stop waits for a start under way to finish, and a second stop waits for the
first instead of running again.

Its config is config.yml's with the settings given as files applied
(`VAR_FILE`, see order_pipeline.config), which nameko's own loader does not
know of, and with nameko's keys for TLS to the broker (AMQP_SSL,
LOGIN_METHOD) made from AMQP_URI and AMQP_SSL_* (order_pipeline.broker), so
that every connection nameko opens for the service honours them.

It also lets a service size its own worker pool: nameko reads one
`max_workers` for every service a process runs, but a gateway worker mostly
waits on the other services. A service class with a `read_max_workers`
attribute (a settings reader, `config -> int`) gets a pool of that size.

A stop that has not ended after STOP_REPORT_SECONDS logs where each
greenthread is waiting, once: what holds it up is then in the log of a
process that has to be killed. SIGUSR1 logs the same at any time (`kill
-USR1 <pid>`), for a service that runs but does nothing.

Selected in config.yml with `SERVICE_CONTAINER_CLS`.
"""

import logging
import signal

import eventlet
from eventlet.event import Event
from nameko.constants import MAX_WORKERS_CONFIG_KEY
from nameko.containers import ServiceContainer

from order_pipeline.broker import nameko_config
from order_pipeline.config import apply_setting_files
from order_pipeline.greenthread_stacks import greenthread_stacks

log = logging.getLogger(__name__)

# Longer than a healthy stop takes: a worker's RPC call or a batch's publish
# confirms (5 s each at most) has finished by then.
STOP_REPORT_SECONDS = 12


class StopOnceServiceContainer(ServiceContainer):
    def __init__(self, service_cls, config, *args, **kwargs):
        config = nameko_config(apply_setting_files(config))
        read_max_workers = getattr(service_cls, "read_max_workers", None)
        if read_max_workers is not None:
            # nameko sizes the pool, and every consumer's prefetch, from this
            # key; the config is this container's own copy.
            config[MAX_WORKERS_CONFIG_KEY] = read_max_workers(config)
        super().__init__(service_cls, config, *args, **kwargs)
        self._stopping = False
        self._start_ended = Event()
        try:
            signal.signal(signal.SIGUSR1, _report_greenthreads)
        except ValueError:  # not the main thread: no report on demand
            pass

    def start(self):
        try:
            super().start()
        finally:
            self._start_ended.send(True)

    def stop(self):
        if self._stopping:
            try:
                self.wait()  # until the first stop has ended
            except Exception:  # the first stop reports how it ended
                pass
            return
        self._stopping = True
        report = eventlet.spawn_after(STOP_REPORT_SECONDS, self._report_slow_stop)
        try:
            if self.started:
                self._start_ended.wait()
            super().stop()
        finally:
            report.cancel()

    def _report_slow_stop(self):
        log.warning(
            "%s: still stopping after %s s; %s",
            self.service_name,
            STOP_REPORT_SECONDS,
            greenthread_stacks(),
        )


def _report_greenthreads(signum, frame):
    # A signal handler runs between two bytecodes of whatever greenthread
    # was running: it only logs, and switches to no other greenthread.
    log.warning("SIGUSR1: %s", greenthread_stacks())

"""nameko's ServiceContainer, stopped once, and only once it has started.

`nameko run` starts a graceful stop for every SIGTERM it receives, in a
greenthread of its own. nameko's container then runs that stop through every
extension at once with whatever else is under way, and several extensions
cannot stop twice (the timer fails, the queue consumer waits forever for a
consumer thread that has gone), nor before they have started (a SIGTERM
while the container was still starting left the process hanging). Here a
stop waits for a start under way to finish, and a second stop waits for the
first instead of running again.

It also gives the gateway a worker pool of its own size,
GATEWAY_MAX_WORKERS: nameko reads one `max_workers` for every service a
process runs, and a gateway worker mostly waits on the other services.

Selected in config.yml with `SERVICE_CONTAINER_CLS`.
"""

from eventlet.event import Event
from nameko.containers import ServiceContainer

from order_contract import GATEWAY
from order_pipeline.settings import gateway_max_workers


class StopOnceServiceContainer(ServiceContainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.service_name == GATEWAY:
            # Before any extension reads it (the consumers' prefetch, the
            # gateway's admission), and before any worker runs.
            self.max_workers = gateway_max_workers(self.config)
            self._worker_pool.resize(self.max_workers)
        self._stopping = False
        self._start_ended = Event()

    def start(self):
        try:
            super().start()
        finally:
            self._start_ended.send(True)

    def stop(self):
        if self._stopping:
            try:
                self._died.wait()
            except Exception:  # the first stop reports how it ended
                pass
            return
        self._stopping = True
        if self.started:
            self._start_ended.wait()
        super().stop()

"""nameko's ServiceContainer, stopped once, and only once it has started.

`nameko run` starts a graceful stop for every SIGTERM it receives, in a
greenthread of its own. nameko's container then runs that stop through every
extension at once with whatever else is under way, and several extensions
cannot stop twice (the timer fails, the queue consumer waits forever for a
consumer thread that has gone), nor before they have started (a SIGTERM
while the container was still starting left the process hanging). Here a
stop waits for a start under way to finish, and a second stop waits for the
first instead of running again.

Selected in config.yml with `SERVICE_CONTAINER_CLS`.
"""

from eventlet.event import Event
from nameko.containers import ServiceContainer


class StopOnceServiceContainer(ServiceContainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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

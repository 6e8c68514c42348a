"""nameko's ServiceContainer, stopped once however often it is asked.

`nameko run` starts a graceful stop for every SIGTERM it receives. nameko's
container runs a second, concurrent stop through every extension, and several
of them cannot stop twice (the timer fails, the queue consumer waits forever
for a consumer thread that has gone), so a second SIGTERM left the process
hanging. Here a second `stop()` waits for the first to finish instead.

Selected in config.yml with `SERVICE_CONTAINER_CLS`.
"""

from nameko.containers import ServiceContainer


class StopOnceServiceContainer(ServiceContainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stopping = False

    def stop(self):
        if self._stopping:
            try:
                self._died.wait()
            except Exception:  # the first stop reports how it ended
                pass
            return
        self._stopping = True
        super().stop()

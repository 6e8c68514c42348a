"""A nameko Timer whose interval is read from config when the service starts.

nameko's `@timer(interval=...)` fixes the interval when the class is defined;
ORDER_INTERVAL_SECONDS must be configurable, so the timer takes a settings
reader and calls it in `setup()` instead:
`@configured_timer(read_interval=order_interval_seconds)` (by keyword: nameko's
decorator takes a lone function argument for the method it decorates).

Stopping it twice is harmless: `nameko run` starts a graceful stop for every
SIGTERM it receives, and nameko's Timer fails the second one
("re-send() an already-triggered event"), which left the process hanging
instead of exiting.
"""

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    def __init__(self, read_interval, **kwargs):
        self.read_interval = read_interval  # config -> seconds
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = self.read_interval(self.container.config)
        super().setup()

    def stop(self):
        if not self.should_stop.ready():
            self.should_stop.send(True)
        self.gt.wait()


configured_timer = ConfiguredTimer.decorator

"""A nameko Timer whose interval is read from config when the service starts.

nameko's `@timer(interval=...)` fixes the interval when the class is defined;
ORDER_INTERVAL_SECONDS must be configurable, so the interval is looked up in
`setup()` instead.

Stopping it twice is harmless: `nameko run` starts a graceful stop for every
SIGTERM it receives, and nameko's Timer fails the second one
("re-send() an already-triggered event"), which left the process hanging
instead of exiting.
"""
from nameko.timer import Timer

from order_pipeline.config import setting


class ConfiguredTimer(Timer):
    def __init__(self, interval_setting, **kwargs):
        self.interval_setting = interval_setting
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = setting(
            self.container.config, self.interval_setting, float, minimum=0.001)
        super().setup()

    def stop(self):
        if not self.should_stop.ready():
            self.should_stop.send(True)
        self.gt.wait()


configured_timer = ConfiguredTimer.decorator

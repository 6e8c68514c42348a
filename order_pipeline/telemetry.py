"""What every worker of every service records about itself: for now, the
service name its log lines carry (order_pipeline.logs)."""

from nameko.extensions import DependencyProvider

from order_pipeline import logs


class Telemetry(DependencyProvider):
    """`telemetry = Telemetry()` on a service class."""

    def setup(self):
        if self.container.service_name not in logs.process_services:
            logs.process_services.append(self.container.service_name)

    def worker_setup(self, worker_ctx):
        # nameko runs worker_setup in the worker's own greenthread, whose
        # context dies with it.
        logs.current_service.set(worker_ctx.service_name)

    def get_dependency(self, worker_ctx):
        return None

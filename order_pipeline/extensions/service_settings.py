"""A service's group of settings, read once when the service starts."""

from nameko.extensions import DependencyProvider


class Settings(DependencyProvider):
    """`settings = Settings(generator_settings)`: the worker gets the
    reader's result, parsed once in `setup()`, so a bad value stops the
    service at start-up rather than failing its first worker."""

    def __init__(self, read):
        self.read = read

    def setup(self):
        self.value = self.read(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.value

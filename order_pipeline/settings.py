"""Inject settings parsed once from config, so a bad value fails at start-up."""
from nameko.extensions import DependencyProvider


class Settings(DependencyProvider):
    """`settings = Settings(parse)`: the worker gets `parse(config)`.

    `parse` is a plain function from the config dict to an immutable settings
    object; it runs once in `setup()` and raises StartupError on a bad
    value, which `nameko run` prints as a one-line error.
    """

    def __init__(self, parse):
        self.parse = parse

    def setup(self):
        self.value = self.parse(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.value

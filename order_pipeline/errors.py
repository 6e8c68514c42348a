"""Start-up failures that `nameko run` reports in one line."""


class StartupError(SystemExit):
    """A setting points at something unusable (unreachable broker or
    database, a bad value): the service must not start.

    It is a SystemExit on purpose. Raised from an extension's `setup()`,
    a ConfigurationError would be printed by nameko's CLI, but only after
    eventlet has printed its traceback, and the process would exit with
    status 0. A SystemExit passes through eventlet's hub untouched, so
    `nameko run` ends with status 1 and prints just "Error: <message>".
    """

    def __init__(self, message):
        super().__init__("Error: " + message)
        self.message = message

    def __str__(self):
        return self.message

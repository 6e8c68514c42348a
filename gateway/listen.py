"""The gateway's listening socket: WEB_SERVER_ADDRESS read, checked and bound
by this gateway alone.

nameko's WebServer opens the socket with `eventlet.listen`, which also sets
SO_REUSEPORT: a second gateway on the same port would then start too, and the
kernel would split the connections between the two. Here the socket has
SO_REUSEADDR only. On Linux that never lets two sockets listen on one port, so
a busy port is a start-up error, yet a restarted gateway still binds while its
old connections sit in TIME_WAIT.
"""
import errno

import eventlet
from eventlet.greenio import GreenSocket
from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.exceptions import ConfigurationError
from nameko.web.server import BindAddress, parse_address

from order_pipeline.errors import StartupError

# nameko's own default when config.yml has no WEB_SERVER_ADDRESS.
DEFAULT_ADDRESS = "0.0.0.0:8000"
MAX_PORT = 65535


def address_setting(config: dict) -> str:
    """WEB_SERVER_ADDRESS as the user wrote it (YAML makes `8000` an int)."""
    raw = config.get(WEB_SERVER_CONFIG_KEY, DEFAULT_ADDRESS)
    return "" if raw is None else str(raw)


def bind_address(config: dict) -> BindAddress:
    """WEB_SERVER_ADDRESS (`[host:]port`) as nameko parses it, or a
    StartupError naming the setting."""
    text = address_setting(config)
    try:
        address = parse_address(text)
    except ConfigurationError:
        address = None
    if address is None or address.port > MAX_PORT:
        raise StartupError(
            f"setting {WEB_SERVER_CONFIG_KEY} must be [host:]port with a port from 0 to "
            f"{MAX_PORT}, got {text!r}")
    return address


def listen(config: dict) -> GreenSocket:
    """A socket listening on WEB_SERVER_ADDRESS that no other socket shares,
    or a StartupError naming the setting."""
    address = bind_address(config)
    try:
        return eventlet.listen(address, reuse_port=False)
    except OSError as exc:  # a busy port, an unknown host, a port below 1024 ...
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another gateway?); stop what holds it, or"
        else:
            reason = f"{exc.strerror or exc};"
        raise StartupError(
            f"cannot listen on {WEB_SERVER_CONFIG_KEY}={address_setting(config)}: "
            f"{reason} set {WEB_SERVER_CONFIG_KEY}") from None

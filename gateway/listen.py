"""The gateway's listening socket: WEB_SERVER_ADDRESS read, checked and bound
by this gateway alone.

nameko's WebServer opens the socket with `eventlet.listen`, which also sets
SO_REUSEPORT: a second gateway on the same port would then start too, and the
kernel would split the connections between the two. Here the socket has
SO_REUSEADDR only. On Linux that never lets two sockets listen on one port, so
a busy port is a start-up error, yet a restarted gateway still binds while its
old connections sit in TIME_WAIT.

The accept queue holds LISTEN_BACKLOG connections (eventlet's default is
50): when it is full the kernel drops new connections' SYNs, and a client
waits a second or more for its retry, however idle the gateway is. Bursts
of hundreds of connections are what gateway.limits is there to answer.
"""

import errno

import eventlet
from eventlet.greenio import GreenSocket
from nameko.constants import WEB_SERVER_CONFIG_KEY

from gateway.settings import web_server_address
from order_pipeline.errors import StartupError

LISTEN_BACKLOG = 1024


def listen(config: dict) -> GreenSocket:
    """A socket listening on WEB_SERVER_ADDRESS that no other socket shares,
    or a StartupError naming the setting."""
    address = web_server_address(config)
    try:
        return eventlet.listen(address, backlog=LISTEN_BACKLOG, reuse_port=False)
    except OSError as exc:  # a busy port, an unknown host, a port below 1024 ...
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another gateway?); stop what holds it, or"
        else:
            reason = f"{exc.strerror or exc};"
        raise StartupError(
            f"cannot listen on {WEB_SERVER_CONFIG_KEY}={address.address}:{address.port}: "
            f"{reason} set {WEB_SERVER_CONFIG_KEY}"
        ) from None

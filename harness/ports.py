"""Free TCP ports on 127.0.0.1, picked at run time."""

import socket


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count):
    """`count` distinct free ports (the kernel may hand a port it just
    released out again, so ask until they differ)."""
    ports = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)

"""Free TCP ports on 127.0.0.1 for the tests' own servers, picked at run time.

A port picked the usual way (bind to port 0, read it, close) is free only
for a moment: the kernel may hand the same port to the next bind to port 0,
in this process or in another. `make test` runs three pytest processes side
by side, and a cluster picks a dozen ports seconds before its nodes bind
them, so two servers could be handed one port, and one of them fail to start.

So the ports come from below the kernel's ephemeral range (which neither a
bind to port 0 nor an outgoing connection ever uses), and each process takes
a block of its own: it holds an exclusive lock (flock) on the block's file
in a shared directory for as long as it lives (the kernel drops the lock
when the process dies, however it dies), and hands out that block's ports
in turn, skipping any that something else holds.
"""

import fcntl
import os
import socket
import tempfile
import threading

FIRST_PORT = 20000
BLOCK_SIZE = 500
# Ports 20000-29999: below Linux's default ephemeral range (32768-60999), and
# below the ports RabbitMQ's command-line tools listen on for a node whose
# distribution port is one of these (that port + 10000 to + 10010).
BLOCKS = 20
LOCK_DIR = os.path.join(tempfile.gettempdir(), "orders_ports")


class PortBlock:
    """One process's block of ports, taken on first use."""

    def __init__(self, lock_dir=LOCK_DIR):
        self.lock_dir = lock_dir
        self.lock = threading.Lock()
        self.lock_file = None  # kept open: the flock lasts as long as it
        self.first = None
        self.next_offset = 0

    def take_block(self):
        os.makedirs(self.lock_dir, exist_ok=True)
        for index in range(BLOCKS):
            lock_file = open(os.path.join(self.lock_dir, f"block-{index}"), "a")
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another live process's block
                lock_file.close()
                continue
            self.lock_file = lock_file
            self.first = FIRST_PORT + index * BLOCK_SIZE
            return
        raise RuntimeError(
            f"all {BLOCKS} port blocks in {self.lock_dir} are held by live processes"
        )

    def port(self):
        with self.lock:
            if self.lock_file is None:
                self.take_block()
            for _ in range(BLOCK_SIZE):
                port = self.first + self.next_offset
                self.next_offset = (self.next_offset + 1) % BLOCK_SIZE
                if bindable(port):
                    return port
        raise RuntimeError(f"no free port left in {self.first}-{self.first + BLOCK_SIZE - 1}")


def bindable(port):
    """Nothing listens on, nor lingers in TIME_WAIT on, 127.0.0.1:port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


PROCESS_BLOCK = PortBlock()


def free_port():
    """A port no other server of this run has been, or will be, handed."""
    return PROCESS_BLOCK.port()


def free_ports(count):
    """`count` distinct free ports."""
    return [free_port() for _ in range(count)]

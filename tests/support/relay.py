"""A TCP relay in front of a real server that can stop passing bytes while
keeping both sockets open: to the client, a node that froze."""

import eventlet
from eventlet.event import Event
from eventlet.green import socket


class Relay:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.passing = True
        self.client_closed = Event()
        self.threads = []

    def start(self):
        self.threads.append(eventlet.spawn(self._accept))
        return self

    def hold(self):
        """Stop passing bytes either way; the sockets stay open."""
        self.passing = False

    def close(self):
        for thread in self.threads:
            thread.kill()
        self.listener.close()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
            self.threads.append(eventlet.spawn(self._pipe, client, server, client_side=True))
            self.threads.append(eventlet.spawn(self._pipe, server, client, client_side=False))

    def _pipe(self, source, sink, client_side):
        while True:
            data = source.recv(65536)
            if not data:
                if client_side:
                    self.client_closed.send(True)
                return
            if self.passing:
                sink.sendall(data)

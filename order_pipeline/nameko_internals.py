"""Every use of nameko's private code, in one place.

nameko 2.14 has no public hook for a few things the services need. Each
reach below names what it relies on; tests/unit/test_library_internals.py
fails if the installed nameko no longer has it (or if the code copied from
it has changed), so an upgrade shows at once what to look at again.

- `forget_reply`: ReplyListener's `_reply_events` dict, to drop the entry of
  a reply nobody waits for (nameko removes it only when the reply arrives).
- `ListeningWebServer`: nameko's WebServer.start and run, copied, with two
  hooks: `listen()` makes the socket (nameko calls eventlet.listen inline,
  with SO_REUSEPORT), `accept_failed(exc)` decides about a failed accept
  (nameko's loop ends, and the gateway with it) and `accepted(sock, addr)`
  takes each new connection in the accept loop (where the gateway admits it,
  or waits before accepting more). They set the private
  attributes (`_sock`, `_serv`, `_gt`, `_starting`, `_is_accepting`) that
  nameko's own stop() and process_request() read. `registered_providers()`
  reads `_providers`.
- `AdmittingHttpRequestHandler`: nameko's HttpRequestHandler.handle_request,
  copied, with the worker's spawn passed through `admit(spawn)`, so that a
  request can wait (boundedly) for room before a worker is spawned.
- `start_shell`: the CLI's own shell runner and its `n` helper.
"""

import functools

from eventlet.event import Event
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer


def forget_reply(reply_listener, reply_event) -> None:
    """Drop `reply_listener`'s entry for `reply_event`, whose caller has
    stopped waiting (its request expired unanswered)."""
    pending = reply_listener._reply_events
    for correlation_id, event in list(pending.items()):
        if event is reply_event:
            del pending[correlation_id]


class ListeningWebServer(WebServer):
    """nameko's WebServer with a socket of the subclass's making and a say
    in what a failed accept does."""

    def listen(self):
        """The listening socket (nameko: `eventlet.listen(self.bind_addr)`)."""
        raise NotImplementedError

    def accept_failed(self, exc: OSError) -> None:
        """Called when accept() raised; raise to stop serving (nameko's way)."""
        raise exc

    def registered_providers(self) -> list:
        return list(self._providers)

    def start(self):
        if not self._starting:
            self._starting = True
            self._sock = self.listen()
            # work around https://github.com/celery/kombu/issues/838
            self._sock.settimeout(None)
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def run(self):
        while self._is_accepting:
            try:
                sock, addr = self._sock.accept()
            except OSError as exc:
                self.accept_failed(exc)
                continue
            sock.settimeout(self._serv.socket_timeout)
            self.accepted(sock, addr)

    def accepted(self, sock, addr):
        """Each new connection, in the accept loop (nameko: handled in a
        thread of its own)."""
        self.container.spawn_managed_thread(functools.partial(self.process_request, sock, addr))


class Admitted:
    """What `admit` returns when nothing is counted: release() does nothing."""

    def release(self):
        pass


class AdmittingHttpRequestHandler(HttpRequestHandler):
    """nameko's HttpRequestHandler, whose worker is spawned through
    `admit(spawn) -> admission` (released once the worker's result is in);
    `admit` may raise to refuse the request."""

    def admit(self, spawn):
        spawn()
        return Admitted()

    def handle_request(self, request):
        request.shallow = False
        try:
            context_data = self.server.context_data_from_headers(request)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            admitted = self.admit(
                lambda: self.container.spawn_worker(
                    self,
                    args,
                    kwargs,
                    context_data=context_data,
                    handle_result=functools.partial(self.handle_result, event),
                )
            )
            try:
                result = event.wait()
            finally:
                admitted.release()
            response = self.response_from_result(result)
        except Exception as exc:
            response = self.response_from_exception(exc)
        return response


def start_shell(banner: str, config: dict, interface: str | None) -> None:
    """nameko's interactive shell, with nameko's `n` helper on `config`."""
    from nameko.cli.shell import ShellRunner, make_nameko_helper

    ShellRunner(banner, {"n": make_nameko_helper(config)}).start_shell(name=interface)

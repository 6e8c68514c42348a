"""A nameko @http entrypoint that speaks JSON, errors included.

nameko answers unknown paths and wrong methods with werkzeug's HTML pages,
and handler exceptions with a plain-text 500 that names the exception. Here
every response is JSON: handlers return a dict/list (200) or a
(status, body) pair, and exceptions are mapped by `gateway.errors`.
"""

import errno
import functools
import json
import logging
import socket

import eventlet
from eventlet.semaphore import Semaphore
from nameko.web.server import WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from gateway.errors import (
    ERRORS,
    INTERNAL_ERROR,
    INTERNAL_ERROR_MESSAGE,
    GatewayBusy,
    http_code,
    status_and_code,
)
from gateway.limits import (
    LINGERING_REFUSALS,
    REFUSAL_LINGER_SECONDS,
    Admission,
    Connections,
    StreamSlots,
    ensure_open_files,
)
from gateway.listen import listen
from gateway.protocol import JsonHttpProtocol, lingering_close, raw_json_error
from gateway.settings import gateway_limits, gateway_tls, max_request_bytes, web_server_address
from gateway.tls import handshake, server_context, wrap
from order_pipeline.nameko_internals import AdmittingHttpRequestHandler, ListeningWebServer

log = logging.getLogger(__name__)

# eventlet's access-log line without its "[date_time]": the log formatter
# already puts a time on every line.
ACCESS_LOG_FORMAT = (
    '%(client_ip)s "%(request_line)s" %(status_code)s %(body_length)s %(wall_seconds).6f'
)


def json_response(status, body, headers=None):
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(status, code, message, headers=None):
    return json_response(status, {"error": code, "message": message}, headers)


class JsonWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        try:
            request = Request(environ, shallow=True)
            adapter = self.url_map.bind_to_environ(environ)
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            headers = [h for h in exc.get_headers() if h[0].lower() == "allow"]
            response = error_response(
                exc.code, http_code(exc.code), exc.description or exc.name, headers
            )
        except Exception:
            log.exception("unhandled error routing %s", environ.get("PATH_INFO"))
            response = error_response(*INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)
        return response(environ, start_response)


class JsonWebServer(ListeningWebServer):
    """nameko's web server with JSON errors at every level, and a connection
    that fails never taking the gateway down with it."""

    # A connection that sends nothing for this long is closed.
    CLIENT_IDLE_SECONDS = 60

    @property
    def bind_addr(self):
        return web_server_address(self.container.config)

    # Out of file descriptors, accepting pauses this long (the backlog waits).
    ACCEPT_PAUSE_SECONDS = 0.1

    def setup(self):
        # A malformed WEB_SERVER_ADDRESS stops the service before it starts.
        web_server_address(self.container.config)
        limits = gateway_limits(self.container.config)
        ensure_open_files(limits)
        self.header_timeout = limits.header_timeout_seconds
        self.connections = Connections(limits.max_connections, StreamSlots(limits.max_streams))
        self.admission = Admission(self.container.max_workers, limits.request_queue_seconds)
        self.lingering_refusals = Semaphore(LINGERING_REFUSALS)
        tls = gateway_tls(self.container.config)
        self.tls_context = None if tls is None else server_context(tls)
        super().setup()

    def listen(self):
        # Bound without SO_REUSEPORT; a busy port is one line at start-up.
        return listen(self.container.config)

    def accept_failed(self, exc):
        # Out of file descriptors: pause accepting rather than end the loop
        # (which would kill the gateway).
        if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            raise exc
        log.warning("cannot accept a connection: %s", exc.strerror)
        eventlet.sleep(self.ACCEPT_PAUSE_SECONDS)

    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=JsonHttpProtocol, debug=False):
        server = super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)
        # The log line has its own time: eventlet's default adds a second one.
        server.log_format = ACCESS_LOG_FORMAT
        server.socket_timeout = self.CLIENT_IDLE_SECONDS
        server.max_request_bytes = max_request_bytes(self.container.config)
        server.header_timeout = self.header_timeout
        server.connections = self.connections
        if self.tls_context is not None:
            server.environ = {"wsgi.url_scheme": "https", "HTTPS": "on"}
        return server

    def make_url_map(self):
        # werkzeug would answer "//status" or "/orders//1" with a redirect;
        # an API has one spelling per route, anything else is a 404.
        url_map = Map(merge_slashes=False)
        for provider in self.registered_providers():
            rule = provider.get_url_rule()
            rule.endpoint = provider
            url_map.add(rule)
        return url_map

    def accepted(self, sock, address):
        """In the accept loop: admit the new connection, or turn it away.

        A connection turned away gets a 503 at once and a lingering close
        (the request it sends meanwhile is read and dropped, so closing
        sends no reset, which a client would report as a failed connection
        and which can discard the 503 it already has). At most
        LINGERING_REFUSALS linger at once: past that, this loop waits for
        one to end before it accepts again, so new connections wait in the
        kernel's accept queue (and are taken in turn, by a place freed or an
        idle connection evicted) instead of being closed unanswered.

        Over HTTPS the socket is wrapped first (no I/O: the handshake waits
        for the connection's own greenthread, gateway.tls), so that what is
        counted, and evicted, is the socket the protocol reads."""
        if self.tls_context is not None:
            try:
                sock = wrap(self.tls_context, sock)
            except OSError:  # the client is gone already
                sock.close()
                return
        connection = self.connections.admit(sock)
        if connection is None:
            self.lingering_refusals.acquire()
            spawn = functools.partial(self.refuse_connection, sock, address)
        else:
            spawn = functools.partial(self.process_request, sock, address, connection)
        self.container.spawn_managed_thread(spawn)

    def process_request(self, sock, address, connection):
        # nameko runs each connection in a managed thread: an exception
        # escaping it would kill the whole gateway container.
        try:
            # Small request/response exchanges: send each response at once.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().process_request(sock, address)
        except Exception:
            log.warning("dropped the connection from %s after an error", address, exc_info=True)
            sock.close()
        finally:
            connection.close()

    def refuse_connection(self, sock, address):
        """A 503 sent without reading the request, then a lingering close;
        gives back the lingering place `accepted` took. Over HTTPS the
        handshake comes first, within the lingering time."""
        try:
            if self.secured_in_time(sock, address):
                sock.sendall(TOO_MANY_CONNECTIONS)
                lingering_close(sock, REFUSAL_LINGER_SECONDS)
        except OSError:
            pass
        finally:
            sock.close()
            self.lingering_refusals.release()

    def secured_in_time(self, sock, address) -> bool:
        """True for plain HTTP, or once the TLS handshake is done; False if
        it fails or takes over REFUSAL_LINGER_SECONDS."""
        if self.tls_context is None:
            return True
        with eventlet.Timeout(REFUSAL_LINGER_SECONDS, False):
            return handshake(sock, address) is None
        return False


TOO_MANY_CONNECTIONS = raw_json_error(503, "too many connections; try again shortly")


class JsonHttpRequestHandler(AdmittingHttpRequestHandler):
    """The entrypoint behind `@json_http`; the request body is never read.

    `costly`: each request makes RPC calls of its own, so it waits for one
    of the gateway's call slots (see gateway.limits) before a worker.
    """

    server = JsonWebServer()

    def __init__(self, method, url, costly=True, **kwargs):
        self.costly = costly
        super().__init__(method, url, **kwargs)

    def admit(self, spawn):
        # The wait for a worker is bounded by the gateway's admission (a 503
        # past it).
        return self.server.admission.start(self.costly, spawn)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status = 200
        if isinstance(result, tuple):
            status, result = result
        return json_response(status, result)

    def response_from_exception(self, exc):
        return response_for_error(exc)


def response_for_error(exc):
    """The JSON error response for an exception; a fault not in the table
    is a 500 whose details go to the log only."""
    status, code = status_and_code(exc)
    if (status, code) == INTERNAL_ERROR:
        log.error("unhandled %s in gateway: %s", type(exc).__name__, exc)
        return error_response(status, code, INTERNAL_ERROR_MESSAGE)
    # A request turned away for room is load shedding, not a fault: the
    # access log has it, and a line each would only add to the load.
    if status >= 500 and not isinstance(exc, GatewayBusy):
        log.warning("answered %s: %s", status, exc)
    return error_response(status, code, str(exc), headers=getattr(exc, "headers", None))


def json_http(method, url, costly=True, **kwargs):
    """`@json_http("GET", "/orders/<order_id>")` on a handler that returns a
    JSON-able result (200) or a (status, result) pair, or raises.

    `costly=False` for a route whose cost to the services does not grow
    with the number of clients (shared reads, static answers, streams that
    take a stream slot): it does not queue behind the costly ones.

    An exception in `gateway.errors.ERRORS` is turned into its JSON error
    inside the worker: a 404 or a 401 is an answer, and nameko would log
    each one as a failed worker with a traceback. Anything else is a fault,
    which nameko logs in full before the client gets a generic 500.
    """
    known_errors = tuple(ERRORS)

    def decorate(handler):
        @functools.wraps(handler)
        def answer(*args, **handler_kwargs):
            try:
                return handler(*args, **handler_kwargs)
            except known_errors as exc:
                return response_for_error(exc)

        return JsonHttpRequestHandler.decorator(method, url, costly=costly, **kwargs)(answer)

    return decorate

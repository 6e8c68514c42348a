"""A nameko @http entrypoint that speaks JSON, errors included.

nameko answers unknown paths and wrong methods with werkzeug's HTML pages,
and handler exceptions with a plain-text 500 that names the exception. Here
every response is JSON: handlers return a dict/list (200) or a
(status, body) pair, and exceptions are mapped by `gateway.errors`.
"""

import functools
import json
import logging
import socket

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from gateway.errors import (
    ERRORS,
    INTERNAL_ERROR,
    INTERNAL_ERROR_MESSAGE,
    http_code,
    status_and_code,
)
from gateway.listen import listen
from gateway.protocol import JsonHttpProtocol
from order_pipeline.settings import max_request_bytes, web_server_address

log = logging.getLogger(__name__)


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


class JsonWebServer(WebServer):
    """nameko's web server with JSON errors at every level, and a connection
    that fails never taking the gateway down with it."""

    # A connection that sends nothing for this long is closed.
    CLIENT_IDLE_SECONDS = 60

    @property
    def bind_addr(self):
        return web_server_address(self.container.config)

    def setup(self):
        # A malformed WEB_SERVER_ADDRESS stops the service before it starts.
        web_server_address(self.container.config)
        super().setup()

    def start(self):
        # nameko's WebServer.start, line for line, except for the socket:
        # `gateway.listen` binds it without SO_REUSEPORT and reports a busy
        # port in one line. nameko has no hook between making the socket and
        # using it, so this sets the private attributes its run() and stop()
        # read; tests/unit/test_gateway.py fails if nameko's start() changes.
        if not self._starting:
            self._starting = True
            self._sock = listen(self.container.config)
            # work around https://github.com/celery/kombu/issues/838
            self._sock.settimeout(None)
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=JsonHttpProtocol, debug=False):
        server = super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)
        server.socket_timeout = self.CLIENT_IDLE_SECONDS
        server.max_request_bytes = max_request_bytes(self.container.config)
        return server

    def make_url_map(self):
        # werkzeug would answer "//status" or "/orders//1" with a redirect;
        # an API has one spelling per route, anything else is a 404.
        url_map = Map(merge_slashes=False)
        for provider in self._providers:
            rule = provider.get_url_rule()
            rule.endpoint = provider
            url_map.add(rule)
        return url_map

    def process_request(self, sock, address):
        # nameko runs each connection in a managed thread: an exception
        # escaping it would kill the whole gateway container.
        try:
            # Small request/response exchanges: send each response at once.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().process_request(sock, address)
        except Exception:
            log.warning("dropped the connection from %s after an error", address, exc_info=True)
            sock.close()


class JsonHttpRequestHandler(HttpRequestHandler):
    """The entrypoint behind `@json_http`; the request body is never read."""

    server = JsonWebServer()

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
    if status >= 500:
        log.warning("answered %s: %s", status, exc)
    return error_response(status, code, str(exc))


def json_http(method, url, **kwargs):
    """`@json_http("GET", "/orders/<order_id>")` on a handler that returns a
    JSON-able result (200) or a (status, result) pair, or raises.

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

        return JsonHttpRequestHandler.decorator(method, url, **kwargs)(answer)

    return decorate

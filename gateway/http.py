"""A nameko @http entrypoint that speaks JSON, errors included.

nameko answers unknown paths and wrong methods with werkzeug's HTML pages,
and handler exceptions with a plain-text 500 that names the exception. Here
every response is JSON: handlers return a dict/list (200) or a
(status, body) pair, and exceptions are mapped by `gateway.errors`.
"""
import json
import logging

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from gateway.errors import (
    ERRORS, HTTP_CODES, INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE, PayloadTooLarge, status_and_code)
from order_pipeline.config import setting

log = logging.getLogger(__name__)


def json_response(status, body, headers=None):
    return Response(
        json.dumps(body, separators=(",", ":")), status=status,
        headers=headers, mimetype="application/json")


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
                exc.code, HTTP_CODES.get(exc.code, "HTTP_{}".format(exc.code)),
                exc.description or exc.name, headers)
        except Exception:
            log.exception("unhandled error routing %s", environ.get("PATH_INFO"))
            response = error_response(*INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)
        return response(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)


class JsonHttpRequestHandler(HttpRequestHandler):
    server = JsonWebServer()

    def __init__(self, method, url, **kwargs):
        # Errors in the table are answers, not faults: log them without a traceback.
        kwargs.setdefault("expected_exceptions", tuple(ERRORS))
        super().__init__(method, url, **kwargs)

    def setup(self):
        super().setup()
        self.max_request_bytes = setting(
            self.container.config, "MAX_REQUEST_BYTES", int, minimum=0)

    def handle_request(self, request):
        length = request.content_length
        if length is not None and length > self.max_request_bytes:
            return self.response_from_exception(PayloadTooLarge(
                "request body over {} bytes".format(self.max_request_bytes)))
        return super().handle_request(request)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status = 200
        if isinstance(result, tuple):
            status, result = result
        return json_response(status, result)

    def response_from_exception(self, exc):
        status, code = status_and_code(exc)
        if status >= 500 and (status, code) == INTERNAL_ERROR:
            log.error("unhandled %s in gateway: %s", type(exc).__name__, exc)
            message = INTERNAL_ERROR_MESSAGE
        else:
            message = str(exc)
        return error_response(status, code, message)


json_http = JsonHttpRequestHandler.decorator

"""The canaries of order_pipeline's adapters to private library code
(nameko_internals, eventlet_internals, kombu_internals): each fails if the installed library
no longer has what an adapter relies on, or if code an adapter copies from
it has changed. An upgrade then shows at once what to look at again."""

import inspect
import logging

import eventlet.wsgi
import yaml
from kombu import Connection, mixins
from kombu import transport as kombu_transports
from kombu.mixins import ConsumerMixin
from kombu.transport import pyamqp
from nameko.cli.main import setup_yaml_parser
from nameko.rpc import ReplyListener
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer

from harness.processes import CONFIG
from order_pipeline import broker, eventlet_internals, kombu_internals, nameko_internals
from order_pipeline.config import load_config
from order_pipeline.extensions.resubscribing_consumer import Resubscribe


def code_lines(function):
    """The statements of a function, without comments, blank lines or its
    `def` line."""
    source = inspect.getsource(function)
    return [
        line.strip()
        for line in source.splitlines()
        if line.strip() and not line.strip().startswith(("#", "def "))
    ]


# nameko 2.14's WebServer.start and run, which ListeningWebServer copies.
NAMEKO_START = [
    "if not self._starting:",
    "self._starting = True",
    "self._sock = eventlet.listen(self.bind_addr)",
    "self._sock.settimeout(None)",
    "self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())",
    "self._gt = self.container.spawn_managed_thread(self.run)",
]
NAMEKO_RUN = [
    "while self._is_accepting:",
    "sock, addr = self._sock.accept()",
    "sock.settimeout(self._serv.socket_timeout)",
    "self.container.spawn_managed_thread(",
    "partial(self.process_request, sock, addr)",
    ")",
]
# nameko's HttpRequestHandler.handle_request, which AdmittingHttpRequestHandler copies.
NAMEKO_HANDLE_REQUEST = [
    "request.shallow = False",
    "try:",
    "context_data = self.server.context_data_from_headers(request)",
    "args, kwargs = self.get_entrypoint_parameters(request)",
    "self.check_signature(args, kwargs)",
    "event = Event()",
    "self.container.spawn_worker(",
    "self, args, kwargs, context_data=context_data,",
    "handle_result=partial(self.handle_result, event))",
    "result = event.wait()",
    "response = self.response_from_result(result)",
    "except Exception as exc:",
    "response = self.response_from_exception(exc)",
    "return response",
]


def test_the_copied_nameko_code_matches_the_nameko_installed():
    assert code_lines(WebServer.start) == NAMEKO_START
    assert code_lines(WebServer.run) == NAMEKO_RUN
    assert code_lines(HttpRequestHandler.handle_request) == NAMEKO_HANDLE_REQUEST


def test_the_web_server_attributes_the_adapter_sets_are_the_ones_nameko_reads():
    server = WebServer()
    for name in ("_sock", "_serv", "_gt", "_starting", "_is_accepting", "_providers"):
        assert hasattr(server, name), name
    stop = inspect.getsource(WebServer.stop)
    assert "self._sock.close()" in stop and "self._gt.kill()" in stop
    assert "self._serv.process_request" in inspect.getsource(WebServer.process_request)


def test_the_reply_listener_keeps_waiting_replies_where_forget_reply_looks():
    listener = ReplyListener()
    event = listener.get_reply_event("correlation-1")
    listener.get_reply_event("correlation-2")
    nameko_internals.forget_reply(listener, event)
    assert list(listener._reply_events) == ["correlation-2"]


def test_eventlet_reads_the_request_line_through_the_method_the_adapter_hooks():
    assert hasattr(eventlet.wsgi.HttpProtocol, "_read_request_line")
    assert "self._read_request_line()" in inspect.getsource(
        eventlet.wsgi.HttpProtocol.handle_one_request
    )
    assert issubclass(eventlet_internals.RequestLineProtocol, eventlet.wsgi.HttpProtocol)


def test_the_shell_adapter_finds_nameko_shell_runner():
    from nameko.cli import shell

    assert callable(shell.ShellRunner) and callable(shell.make_nameko_helper)
    assert "start_shell" in dir(shell.ShellRunner)


def test_our_config_loader_reads_config_yml_as_nameko_run_does(monkeypatch, tmp_path):
    """order_pipeline.config replaces nameko's CLI loader outside `nameko
    run`: both must give the same config, defaults and overrides alike."""
    monkeypatch.setenv("ORDER_INTERVAL_SECONDS", "0.25")
    monkeypatch.setenv("AMQP_URI", "amqp://u:p@h:5672/v")
    monkeypatch.delenv("PRICE_SEED", raising=False)
    ours = load_config(CONFIG)

    class NamekoLoader(yaml.SafeLoader):
        pass

    # nameko's setup adds its resolver to yaml.SafeLoader itself: give it a
    # subclass of its own to change, so that other tests' YAML is untouched.
    monkeypatch.setattr(yaml, "SafeLoader", NamekoLoader)
    setup_yaml_parser()
    with open(CONFIG) as config_file:
        theirs = yaml.load(config_file, Loader=NamekoLoader)
    assert ours == theirs
    assert ours["ORDER_INTERVAL_SECONDS"] == 0.25 and ours["PRICE_SEED"] is None


def test_kombu_still_fills_in_the_tls_name_in_the_dict_it_is_given():
    """What NodeNamedSSLTransport works around: kombu names the node in
    the caller's own `ssl` dict, only when the name there is None."""
    source = inspect.getsource(pyamqp.Transport.establish_connection)
    assert "conninfo.ssl['server_hostname'] is None" in source
    assert "conninfo.ssl['server_hostname'] = conninfo.hostname" in source


def test_amqps_connections_go_through_the_node_named_transport():
    assert broker.use_node_named_tls is kombu_internals.use_node_named_tls  # run on import
    assert isinstance(kombu_transports._transport_cache, dict)
    connection = Connection("amqps://a:5671/;amqps://b:5671/", ssl={"server_hostname": None})
    assert connection.transport_cls == "amqps"
    assert type(connection.transport) is kombu_internals.NodeNamedSSLTransport


class OneLoop(ConsumerMixin):
    """kombu's consuming loop around a consume that fails once with `error`."""

    def __init__(self, error):
        self.connection = Connection("amqp://127.0.0.1:1//")  # py-amqp's errors; never connects
        self.error = error

    def get_consumers(self, Consumer, channel):
        return []

    def consume(self, *args, **kwargs):
        self.should_stop = True
        raise self.error
        yield


def test_kombu_logs_a_lost_connection_where_the_filter_drops_an_intended_one(caplog):
    """kombu's loop still logs the reconnect line, with the traceback, on
    the logger quiet_intended_reconnects filters (the resubscribing
    consumer installs it): a lost connection is logged, an intended drop
    (Resubscribe) is not."""
    with caplog.at_level(logging.WARNING, logger="kombu.mixins"):
        OneLoop(ConnectionResetError("lost")).run()
        OneLoop(Resubscribe("nothing delivered")).run()
    lines = [(r.name, r.getMessage(), type(r.exc_info[1])) for r in caplog.records]
    assert lines == [("kombu.mixins", mixins.W_CONN_LOST, ConnectionResetError)]

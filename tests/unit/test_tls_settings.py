"""The TLS settings: what turns TLS on for each hop, the options every
connection is opened with, and a one-line error naming the setting for
each file or combination that cannot work. Certificates are made for the
run (openssl); nothing else runs."""

import ssl

import pytest
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY

from gateway.settings import GatewayTls, gateway_tls
from gateway.tls import server_context
from harness.certificates import Certificates
from harness.processes import CONFIG
from order_pipeline.broker import Broker, broker, nameko_config
from order_pipeline.config import load_config
from order_pipeline.database import connect_args, for_services
from order_pipeline.errors import StartupError
from order_pipeline.settings import amqp_tls, db_tls
from order_pipeline.tls import TlsFiles


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certificates(str(tmp_path_factory.mktemp("certs")))


def config(**settings):
    return {**load_config(CONFIG), **settings}


def test_no_tls_by_default(monkeypatch):
    for key in ("AMQP_URI", "AMQP_SSL_CA_FILE", "DB_SSL_CA_FILE", "GATEWAY_TLS_CERT_FILE"):
        monkeypatch.delenv(key, raising=False)
    defaults = load_config(CONFIG)
    assert (amqp_tls(defaults), db_tls(defaults), gateway_tls(defaults)) == (None, None, None)
    assert connect_args(db_tls(defaults)) == {"connect_timeout": 5}
    assert AMQP_SSL_CONFIG_KEY not in nameko_config(defaults)


def test_amqps_checks_the_broker_against_the_system_cas_without_a_ca_file():
    """What worked before these settings (amqps:// with SSL_CERT_FILE)
    still does: no CA file means the system's CAs, which SSL_CERT_FILE
    replaces; the host name is checked now too."""
    target = broker(config(AMQP_URI="amqps://u:p@rabbit.example:5671/v"))
    assert target.tls == TlsFiles(prefix="AMQP_SSL")
    assert target.connection_options() == {
        "ssl": {
            "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": "rabbit.example",
            "ca_certs": None,
            "certfile": None,
            "keyfile": None,
        }
    }


def test_a_client_certificate_logs_in_with_external_on_nameko_connections_too(certs):
    settings = config(
        AMQP_URI="amqps://localhost:5671/",
        AMQP_SSL_CA_FILE=certs.ca.cert,
        AMQP_SSL_CERT_FILE=certs.client.cert,
        AMQP_SSL_KEY_FILE=certs.client.key,
    )
    options = broker(settings).connection_options()
    assert options["login_method"] == "EXTERNAL"
    assert (options["ssl"]["certfile"], options["ssl"]["keyfile"]) == (
        certs.client.cert,
        certs.client.key,
    )
    nameko = nameko_config(settings)
    assert (nameko[AMQP_SSL_CONFIG_KEY], nameko[LOGIN_METHOD_CONFIG_KEY]) == (
        options["ssl"],
        "EXTERNAL",
    )


def test_with_a_password_in_amqp_uri_the_certificate_is_shown_and_the_password_logs_in(certs):
    """A broker that wants both (mutual TLS, and a user per service)."""
    settings = config(
        AMQP_URI="amqps://order_generator:secret@localhost:5671/",
        AMQP_SSL_CERT_FILE=certs.client.cert,
        AMQP_SSL_KEY_FILE=certs.client.key,
    )
    options = broker(settings).connection_options()
    assert options["ssl"]["certfile"] == certs.client.cert
    assert "login_method" not in options
    assert LOGIN_METHOD_CONFIG_KEY not in nameko_config(settings)


def test_one_node_is_checked_by_its_name_several_by_each_ones_own():
    """kombu would check "127.0.0.1" for a node written "localhost"; with
    several nodes the transport names each attempt after its node."""
    single = Broker("amqps://localhost:5671/v", TlsFiles()).connection_options()
    assert single["ssl"]["server_hostname"] == "localhost"
    several = Broker("amqps://a:5671/v;amqps://b:5671/v", TlsFiles())
    first, second = several.connection_options(), several.connection_options()
    assert first == second and first["ssl"] is not second["ssl"]
    assert first["ssl"]["server_hostname"] is None


def test_a_config_made_by_hand_without_the_tls_settings_means_none():
    assert broker({"AMQP_URI": "amqp://guest:guest@localhost/"}).tls is None
    assert db_tls({}) is None and gateway_tls({}) is None


def test_the_database_connects_with_a_context_that_checks_certificate_and_host(certs):
    settings = config(DB_SSL_CA_FILE=certs.ca.cert)
    context = connect_args(db_tls(settings))["ssl"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    options = for_services({"pool_size": 1, "connect_args": {"connect_timeout": 5}}, settings)
    assert options["pool_size"] == 1 and options["connect_args"]["connect_timeout"] == 5
    assert options["connect_args"]["ssl"].verify_mode == ssl.CERT_REQUIRED


def test_the_gateway_serves_its_certificate_from_tls_1_2_up(certs):
    tls = gateway_tls(
        config(GATEWAY_TLS_CERT_FILE=certs.server.cert, GATEWAY_TLS_KEY_FILE=certs.server.key)
    )
    assert tls == GatewayTls(certs.server.cert, certs.server.key)
    assert server_context(tls).minimum_version == ssl.TLSVersion.TLSv1_2


def refusals(certs, missing):
    """(reader, settings, what the one line must name)."""
    amqps = {"AMQP_URI": "amqps://localhost:5671/"}
    return [
        (amqp_tls, {**amqps, "AMQP_SSL_CA_FILE": missing}, f"AMQP_SSL_CA_FILE={missing}"),
        # A file that is not a CA (a key).
        (amqp_tls, {**amqps, "AMQP_SSL_CA_FILE": certs.ca.key}, "AMQP_SSL_CA_FILE="),
        (
            amqp_tls,
            {**amqps, "AMQP_SSL_CERT_FILE": certs.client.cert, "AMQP_SSL_KEY_FILE": certs.ca.key},
            f"AMQP_SSL_KEY_FILE={certs.ca.key}",
        ),
        (amqp_tls, {**amqps, "AMQP_SSL_KEY_FILE": certs.client.key}, "without AMQP_SSL_CERT_FILE"),
        # TLS files for a plain URI would be ignored: the traffic in clear.
        (
            amqp_tls,
            {"AMQP_URI": "amqp://localhost/", "AMQP_SSL_CA_FILE": certs.ca.cert},
            "is not amqps://",
        ),
        (
            amqp_tls,
            {"AMQP_URI": "amqps://a:5671/;amqp://b:5672/"},
            "lists amqps:// and plain nodes",
        ),
        (db_tls, {"DB_SSL_CA_FILE": missing}, f"DB_SSL_CA_FILE={missing}"),
        (db_tls, {"DB_SSL_CERT_FILE": certs.client.key}, "DB_SSL_CERT_FILE="),
        (gateway_tls, {"GATEWAY_TLS_KEY_FILE": certs.server.key}, "without GATEWAY_TLS_CERT_FILE"),
        (
            lambda c: server_context(gateway_tls(c)),
            {"GATEWAY_TLS_CERT_FILE": missing},
            f"GATEWAY_TLS_CERT_FILE={missing}",
        ),
    ]


@pytest.mark.parametrize("index", range(10))
def test_unusable_tls_settings_stop_start_up_with_one_line_naming_them(certs, tmp_path, index):
    reader, settings, named = refusals(certs, str(tmp_path / "missing.pem"))[index]
    with pytest.raises(StartupError) as refused:
        reader(config(**settings))
    assert named in refused.value.message
    assert "\n" not in refused.value.message


def test_service_connections_time_out_reads_and_writes_as_db_io_timeout_seconds_says():
    options = for_services({"connect_args": {"connect_timeout": 5}}, config())
    arguments = options["connect_args"]
    assert (arguments["read_timeout"], arguments["write_timeout"]) == (30.0, 30.0)
    assert arguments["connect_timeout"] == 5
    never = for_services({"connect_args": {}}, config(DB_IO_TIMEOUT_SECONDS="0"))
    assert "read_timeout" not in never["connect_args"]
    with pytest.raises(StartupError, match="DB_IO_TIMEOUT_SECONDS"):
        for_services({}, config(DB_IO_TIMEOUT_SECONDS="-1"))

"""Every hop over TLS, with servers that take nothing else: a RabbitMQ node
with no plain listener whose only user logs in with a client certificate,
a MariaDB that requires TLS and whose services' user requires a client
certificate, and the gateway on HTTPS (harness.tls_servers); the node's
management API is HTTPS only and wants a client certificate too.
Certificates are made for the run. Then the refusals: a wrong CA, a wrong host name, or
plain AMQP to the TLS-only node stops a service at start-up with one line
naming the setting to fix."""

import atexit
import os
import signal
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from harness.broker import publish_order_created, vhost_of
from harness.private_servers import PrivateServers
from harness.processes import CONFIG, NAMEKO, ROOT, Pipeline, free_port, wait_until
from harness.tables import order_count, processed_count, sql_metrics, unprocessed_order_ids
from order_contract import GATEWAY, GENERATOR, PROCESSOR
from order_pipeline.broker import broker, check_broker, connect
from order_pipeline.broker_admin import BrokerAdmin
from order_pipeline.commands.provision import password_variable
from order_pipeline.config import load_config
from order_pipeline.database import connect_args
from order_pipeline.database_admin import drop_user
from order_pipeline.errors import StartupError
from order_pipeline.identities import IDENTITIES
from order_pipeline.tls import TlsFiles
from tests.support.prometheus import TEXT_ACCEPT, exposition_samples

CLIENT_USER_ROW = ("order-pipeline", "true", "EXTERNAL")


@pytest.fixture(scope="module")
def tls_servers(tmp_path_factory):
    servers = PrivateServers(str(tmp_path_factory.mktemp("tls")), tls=True, management=True)
    # Also on an interrupted run that skips fixture teardown.
    atexit.register(servers.stop)
    try:
        yield servers.start()
    finally:
        servers.stop()
        atexit.unregister(servers.stop)


def live_services(system):
    """The services with a live instance in /instances."""
    response = system.get("/instances")
    if response.status_code != 200:
        return set()
    return {item["service"] for item in response.json()["instances"] if item["state"] == "live"}


def command(*args, env, stdin="", timeout=60):
    """A project command as an operator runs it, with `env` added."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_pipeline_runs_end_to_end_with_every_hop_over_tls(tls_servers, tmp_path):
    db_uri, amqp_uri = tls_servers.create_database(), tls_servers.create_vhost()
    tables = tls_servers.admin_engine(db_uri)
    settings = tls_servers.settings
    system = Pipeline(
        db_uri,
        amqp_uri,
        str(tmp_path),
        https_ca=tls_servers.https_ca,
        ORDER_INTERVAL_SECONDS=0.2,
        **settings,
    )
    try:
        system.start()  # /health answered over HTTPS
        wait_until(lambda: order_count(tables) >= 8, 60, message="orders created")
        # Each service's heartbeats, sent on a connection of its own.
        wait_until(
            lambda: live_services(system) == {GENERATOR, PROCESSOR, GATEWAY},
            60,
            message="a live instance of each service in /instances",
        )
        # An event the processor cannot read: its reliable handler publishes
        # it to the dead-letter queue, and counts it in its own table.
        publish_order_created(tls_servers.broker(amqp_uri), ["not json"], content_type="text/plain")
        assert system.post("/stop").json()["running"] is False
        wait_until(
            lambda: order_count(tables) and not unprocessed_order_ids(tables),
            60,
            message="every order processed",
        )
        assert system.get("/metrics").json() == sql_metrics(tables)
        assert processed_count(tables) == order_count(tables)
        # The dead letter as the processor lists it, and the queue depth the
        # gateway reads from the broker itself.
        assert system.get("/dead-letters").json()["count"] == 1
        figures = wait_until(
            lambda: dead_letter_figures(system), 30, message="the dead letter in /metrics"
        )
        assert figures == {"depth": 1, "dead_lettered": 1}

        # The operator commands, over TLS too.
        env = {"AMQP_URI": amqp_uri, "DB_URI": db_uri, **settings}
        probe = command(
            "order_pipeline.commands.probe", "rpc", "--config", CONFIG, "order_generator", "status",
            env=env,
        )  # fmt: skip
        assert (probe.returncode, probe.stdout) == (0, "order_generator.status: ok\n")
        # nameko's connections too check each node by its own name: the
        # first, 127.0.0.1, does not answer; the next is the node, reached
        # by the name its certificate holds.
        vhost, dead = amqp_uri.rsplit("/", 1)[1], free_port()
        nodes = f"amqps://127.0.0.1:{dead}/{vhost};{amqp_uri}"
        probe = command(
            "order_pipeline.commands.probe", "rpc", "--config", CONFIG, "order_generator", "status",
            env={**env, "AMQP_URI": nodes},
        )  # fmt: skip
        assert (probe.returncode, probe.stdout) == (0, "order_generator.status: ok\n")
        # What worked before AMQP_SSL_CA_FILE: the CA in Python's default
        # trust, through SSL_CERT_FILE.
        probe = command(
            "order_pipeline.commands.probe", "rpc", "--config", CONFIG, "order_generator", "status",
            env={**env, "AMQP_SSL_CA_FILE": "", "SSL_CERT_FILE": tls_servers.certs.ca.cert},
        )  # fmt: skip
        assert (probe.returncode, probe.stdout) == (0, "order_generator.status: ok\n")
        shell = command(
            "order_pipeline.commands.shell", "--config", CONFIG, "--interface", "plain",
            env=env, stdin="print('running:', n.rpc.order_generator.status()['running'])\n",
        )  # fmt: skip
        assert "running: False" in shell.stdout, shell.stdout + shell.stderr

        # Every connection open to the broker is TLS, logged in by the
        # client certificate (the node has no other user).
        rows = {
            tuple(line.split("\t"))
            for line in tls_servers.rabbit.ctl(
                "list_connections", "user", "ssl", "auth_mechanism", "--no-table-headers"
            ).splitlines()
            if line.strip()
        }
        assert rows == {CLIENT_USER_ROW}

        # Plain HTTP to the gateway's port is told to use HTTPS.
        plain = requests.get(f"http://127.0.0.1:{system.port}/health", timeout=10)
        assert plain.status_code == 400
        assert "https://" in plain.json()["message"]
    finally:
        system.stop()
        tables.dispose()


def dead_letter_figures(system):
    samples = exposition_samples(system.get("/metrics", headers={"Accept": TEXT_ACCEPT}))
    figures = {
        "depth": samples.get("order_pipeline_dead_letter_queue_depth"),
        "dead_lettered": samples.get("order_pipeline_orders_dead_lettered_total"),
    }
    return figures if figures["depth"] else None


def test_the_operator_commands_reach_a_tls_only_broker_and_database(tls_servers):
    # As root: the services' user may not create databases.
    db_uri = f"mysql+pymysql://root@localhost:{tls_servers.mariadb.port}/new_{uuid.uuid4().hex[:8]}"
    env = {"AMQP_URI": tls_servers.create_vhost(), "DB_URI": db_uri}
    env.update(tls_servers.settings)
    migrated = command("order_pipeline.commands.migrate", "--config", CONFIG, env=env)
    assert migrated.stdout.splitlines()[0] == "created the database", migrated.stderr
    recreated = command("order_pipeline.commands.recreate_queues", "--config", CONFIG, env=env)
    assert recreated.returncode == 0, recreated.stderr
    assert recreated.stdout.splitlines()[-1] == "done: 0 queue(s) re-created"


def test_the_provision_step_reaches_a_tls_only_management_api_and_database(tls_servers):
    """compose.cluster.yaml's provision step: the broker's TLS files
    (AMQP_SSL_*) serve for its management API, the database's (DB_SSL_*)
    for the administrator and the migrations; each user made can then log
    in over TLS. Without the client certificate the management API
    refuses it, and one line says what to set."""
    run = uuid.uuid4().hex[:8]
    admin, admin_password = f"admin_{run}", uuid.uuid4().hex
    vhost = vhost_of(tls_servers.create_vhost())
    tls_servers.rabbitmqctl("add_user", admin, admin_password)
    tls_servers.rabbitmqctl("set_user_tags", admin, "administrator")
    management = urlsplit(tls_servers.rabbit.management_url)
    admin_url = f"https://{admin}:{admin_password}@localhost:{management.port}/"
    db_admin_uri = f"mysql+pymysql://root@localhost:{tls_servers.mariadb.port}/new_{run}"
    prefix = f"tls_{run}_"
    passwords = {
        password_variable(each.name, system): uuid.uuid4().hex
        for each in IDENTITIES
        for system, grant in (("AMQP", each.broker), ("DB", each.database))
        if grant is not None
    }
    env = {
        "RABBITMQ_ADMIN_URL": admin_url,
        "RABBITMQ_VHOST": vhost,
        "DB_ADMIN_URI": db_admin_uri,
        "STARTUP_WAIT_SECONDS": "30",  # the management API starts after AMQP
        **passwords,
        **tls_servers.settings,
    }
    certs = tls_servers.certs
    admin_api = BrokerAdmin(
        admin_url, tls=TlsFiles(certs.ca.cert, certs.client.cert, certs.client.key)
    )
    engine = None
    try:
        provisioned = command(
            "order_pipeline.commands.provision",
            "--migrate",
            "--user-prefix",
            prefix,
            env=env,
            timeout=120,
        )
        assert provisioned.returncode == 0, provisioned.stderr
        for each in IDENTITIES:
            kinds = ["broker"] * bool(each.broker) + ["database"] * bool(each.database)
            for kind in kinds:
                assert any(
                    line.startswith(f"{kind} user {prefix}{each.name}: created;")
                    for line in provisioned.stdout.splitlines()
                ), provisioned.stdout
        # The generator's database user, over TLS, on its migrated tables.
        engine = create_engine(
            f"mysql+pymysql://{prefix}order_generator:{passwords['ORDER_GENERATOR_DB_PASSWORD']}"
            f"@localhost:{tls_servers.mariadb.port}/new_{run}",
            connect_args=connect_args(TlsFiles(certs.ca.cert, prefix="DB_SSL")),
        )
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM orders")).scalar() == 0

        without_certificate = {
            **env,
            "AMQP_SSL_CERT_FILE": "",
            "AMQP_SSL_KEY_FILE": "",
            "STARTUP_WAIT_SECONDS": "0",
        }
        refused = command(
            "order_pipeline.commands.provision", "--user-prefix", prefix, env=without_certificate
        )
        assert refused.returncode == 1
        assert (
            refused.stderr.strip()
            .splitlines()[-1]
            .startswith("Error: cannot reach the RabbitMQ management API at RABBITMQ_ADMIN_URL=")
        ), refused.stderr
        assert "set AMQP_SSL_CERT_FILE and AMQP_SSL_KEY_FILE" in refused.stderr
    finally:
        if engine is not None:
            engine.dispose()
        for each in IDENTITIES:
            try:
                admin_api.delete_user(prefix + each.name)
            except StartupError:
                pass
        tls_servers.rabbitmqctl("delete_user", admin)
        tls_servers.drop_vhost(f"amqps://localhost/{vhost}")
        root = tls_servers.admin_engine(
            f"mysql+pymysql://root@localhost:{tls_servers.mariadb.port}/"
        )
        try:
            with root.begin() as connection:
                for each in IDENTITIES:
                    drop_user(connection, prefix + each.name)
                connection.execute(text(f"DROP DATABASE IF EXISTS `new_{run}`"))
        finally:
            root.dispose()


def test_make_run_serves_the_console_over_https(tls_servers, db_uri, amqp_uri, tmp_path):
    """The gateway exposed without a proxy in front: `make run` with the
    gateway's certificate and key says https:// and serves it."""
    port, log_path = free_port(), tmp_path / "make-run.log"
    certs = tls_servers.certs
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "DB_URI": db_uri,
                "AMQP_URI": amqp_uri,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "GATEWAY_TLS_CERT_FILE": certs.server.cert,
                "GATEWAY_TLS_KEY_FILE": certs.server.key,
            },
        )
    try:

        def console():
            try:
                return requests.get(f"https://localhost:{port}/", verify=certs.ca.cert, timeout=5)
            except requests.RequestException:
                return None

        page = wait_until(console, 90, message="the console over HTTPS")
        assert page.headers["Content-Type"].startswith("text/html")
        assert f"Console: https://localhost:{port}/ " in log_path.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_each_node_of_a_list_is_checked_by_its_own_host_name(tls_servers):
    """The first node, 127.0.0.1, does not answer; the next is the node,
    by the name its certificate holds. Checked against the first node's
    name (kombu's way), it would be refused."""
    nodes = f"amqps://127.0.0.1:{free_port()}/;amqps://localhost:{tls_servers.rabbit.port}/"
    config = {**load_config(CONFIG), **tls_servers.settings, "AMQP_URI": nodes}
    check_broker(config)  # the start-up check: no StartupError
    with connect(broker(config)) as connection:
        assert connection.port == tls_servers.rabbit.port


# --- refusals ------------------------------------------------------------------


def nameko_run(module, env, timeout=60):
    return subprocess.run(
        [NAMEKO, "run", "--config", CONFIG, module],
        cwd=ROOT,
        # A refusal says so at once, not after STARTUP_WAIT_SECONDS.
        env={**os.environ, "STARTUP_WAIT_SECONDS": "0", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def the_one_error_line(done):
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


def broker_case(name, servers):
    """(service, settings, what the error line must say) for each way of
    getting TLS to the broker wrong."""
    port, certs = servers.rabbit.port, servers.certs
    good = {"AMQP_SSL_CA_FILE": certs.ca.cert}
    return {
        "wrong CA": (
            "generator_service",
            {"AMQP_URI": f"amqps://localhost:{port}/", "AMQP_SSL_CA_FILE": certs.other_ca.cert},
            f"AMQP_SSL_CA_FILE={certs.other_ca.cert}",
        ),
        "wrong host name": (
            "processor_service",
            {"AMQP_URI": f"amqps://127.0.0.1:{port}/", **good},
            "certificate is not valid for '127.0.0.1'",
        ),
        "plain AMQP to the TLS-only node": (
            "gateway",
            {"AMQP_URI": f"amqp://localhost:{port}/"},
            "use amqps:// in AMQP_URI",
        ),
    }[name]


@pytest.mark.parametrize("case", ["wrong CA", "wrong host name", "plain AMQP to the TLS-only node"])
def test_a_broker_tls_mistake_stops_a_service_with_one_line(tls_servers, db_uri, case):
    module, env, says = broker_case(case, tls_servers)
    line = the_one_error_line(nameko_run(module, {"DB_URI": db_uri, **env}))
    assert "cannot reach the broker at AMQP_URI=" in line and says in line, line


def database_case(name, servers, plain_db_uri):
    certs = servers.certs
    tls_db_uri = f"mysql+pymysql://root@localhost:{servers.mariadb.port}/mysql"
    return {
        "wrong CA": (
            "generator_service",
            {"DB_URI": tls_db_uri, "DB_SSL_CA_FILE": certs.other_ca.cert},
            f"DB_SSL_CA_FILE={certs.other_ca.cert}",
        ),
        "wrong host name": (
            "processor_service",
            {
                "DB_URI": tls_db_uri.replace("localhost", "127.0.0.1"),
                "DB_SSL_CA_FILE": certs.ca.cert,
            },
            "certificate is not valid for '127.0.0.1'",
        ),
        "TLS asked of a server without it": (
            "generator_service",
            {"DB_URI": plain_db_uri, "DB_SSL_CA_FILE": certs.ca.cert},
            "the server offers none",
        ),
    }[name]


@pytest.mark.parametrize(
    "case", ["wrong CA", "wrong host name", "TLS asked of a server without it"]
)
def test_a_database_tls_mistake_stops_a_service_with_one_line(tls_servers, db_uri, amqp_uri, case):
    module, env, says = database_case(case, tls_servers, db_uri)
    line = the_one_error_line(nameko_run(module, {"AMQP_URI": amqp_uri, **env}))
    assert "cannot use the database at DB_URI=" in line and says in line, line


def test_a_gateway_certificate_it_cannot_use_stops_it_with_one_line(tls_servers, amqp_uri):
    certs = tls_servers.certs
    env = {
        "AMQP_URI": amqp_uri,
        # A key that is not the certificate's.
        "GATEWAY_TLS_CERT_FILE": certs.server.cert,
        "GATEWAY_TLS_KEY_FILE": certs.client.key,
    }
    line = the_one_error_line(nameko_run("gateway", env))
    assert f"GATEWAY_TLS_KEY_FILE={certs.client.key}" in line, line

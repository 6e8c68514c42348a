"""compose.cluster.yaml's TLS between cluster nodes, run on this machine.

No container engine runs here, so the files are run without one: two
RabbitMQ nodes with the brokers' environment from compose.cluster.yaml
(Erlang distribution over TLS), deploy/rabbitmq/inter_node_tls.config and
deploy/rabbitmq/tls.conf; two Galera nodes with deploy/galera/galera.cnf
(replication, state transfers and clients over TLS) and HAProxy with
deploy/haproxy/haproxy.cfg in front of them. The certificates are made by
deploy/tls/make-certs.sh. Each file is used as written but for what only a
container has: its paths under /etc and its ports, rewritten to this
machine's, and the host names of the nodes, which are all localhost here.
"""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import amqp
import pymysql
import pytest

from harness.ports import free_ports
from harness.private_server import PrivateServer
from harness.processes import wait_until
from tests.support.deployment import CLUSTER, ROOT, Deployment, environment, make_certs

RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"
MARIADBD = "/usr/sbin/mariadbd"
HAPROXY = "/usr/sbin/haproxy"
START_SECONDS = 180
SYNCED = "4"  # wsrep_local_state
ER_ACCESS_DENIED = 1045


def deploy_text(path, replacements):
    """A file under deploy/ with each (old, new) replaced; each old must be
    in it, so a change to the file that the test no longer follows fails
    here rather than testing something else."""
    text = (ROOT / path).read_text()
    for old, new in replacements:
        assert old in text, (path, old)
        text = text.replace(old, new)
    return text


# --- RabbitMQ -----------------------------------------------------------------


def broker_environment():
    """The brokers' environment as compose.cluster.yaml gives it, with a
    cookie of this run's."""
    cookie = uuid.uuid4().hex
    services = Deployment.from_files(CLUSTER).services({"RABBITMQ_ERLANG_COOKIE": cookie})
    return environment(services[CLUSTER.brokers[0]])


class TlsRabbit(PrivateServer):
    """A RabbitMQ node with the cluster's TLS files; `erl_args` is what
    compose.cluster.yaml gives the node and its CLI tools, with the options
    file's container path rewritten."""

    name = "RabbitMQ (TLS)"

    def __init__(self, base_dir, node, port, dist_port, certs, erl_args, peers):
        super().__init__(base_dir, "rabbit.log")
        os.makedirs(base_dir)
        self.node, self.port, self.certs, self.erl_args = node, port, certs, erl_args
        tls_conf = deploy_text(
            "deploy/rabbitmq/tls.conf",
            [
                ("/etc/rabbitmq/tls", str(certs)),
                ("listeners.ssl.default = 5671", f"listeners.ssl.default = 127.0.0.1:{port}"),
            ],
        )
        discovery = "cluster_formation.peer_discovery_backend = classic_config\n" + "".join(
            f"cluster_formation.classic_config.nodes.{i} = {peer}\n"
            for i, peer in enumerate(peers, 1)
        )
        self._write("rabbitmq.conf", tls_conf + discovery)
        self._write("enabled_plugins", "[].\n")
        self._write("rabbitmq-env.conf", "")
        self.env_vars = {
            "HOME": base_dir,
            "RABBITMQ_CONF_ENV_FILE": self._path("rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": self._path("rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": self._path("enabled_plugins"),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": self._path("mnesia"),
            "RABBITMQ_LOG_BASE": self._path("log"),
            "RABBITMQ_PID_FILE": self._path("rabbit.pid"),
            "RABBITMQ_LOGS": "-",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # No busy-waiting schedulers on a shared machine.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": erl_args + " +sbwt none +sbwtdcpu none",
        }

    def _path(self, name):
        return os.path.join(self.base_dir, name)

    def _write(self, name, text):
        with open(self._path(name), "w") as file:
            file.write(text)

    def env(self):
        return {**super().env(), **self.env_vars}

    def command(self):
        return [os.path.join(RABBITMQ_BIN, "rabbitmq-server")]

    def answers(self):
        try:
            amqp_connection(self.port, self.certs).close()
            return True
        except (OSError, amqp.exceptions.AMQPError):  # not up yet
            return False

    def cli(self, tool, *args, erl_args=None):
        """A CLI tool against this node, as the healthcheck runs it inside
        the container: with RABBITMQ_CTL_ERL_ARGS (compose's unless given)."""
        env = {**self.env(), "RABBITMQ_CTL_ERL_ARGS": self.erl_args}
        if erl_args is not None:
            env["RABBITMQ_CTL_ERL_ARGS"] = erl_args
        return subprocess.run(
            [os.path.join(RABBITMQ_BIN, tool), "-n", self.node, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def amqp_connection(port, certs=None, ca=None):
    """An AMQP 0-9-1 connection over TLS to localhost:port, checking the
    node's certificate against `ca` (the certificates' CA by default) and
    showing the certificate in `certs`, if given."""
    options = {
        "ca_certs": str(ca or certs / "ca.pem"),
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": "localhost",
    }
    if certs:
        options.update(certfile=str(certs / "cert.pem"), keyfile=str(certs / "key.pem"))
    connection = amqp.Connection(
        f"localhost:{port}", userid="guest", password="guest", ssl=options, connect_timeout=10
    )
    connection.connect()
    return connection


def options_file(tmp_path, name, certs):
    path = tmp_path / name
    path.write_text(
        deploy_text("deploy/rabbitmq/inter_node_tls.config", [("/etc/rabbitmq/tls", str(certs))])
    )
    return path


@pytest.fixture(scope="module")
def rabbit_pair(tmp_path_factory):
    """Two nodes, the second joining the first at boot, each with
    compose.cluster.yaml's environment and the cluster's TLS files."""
    base = tmp_path_factory.mktemp("rabbit-tls")
    certs = make_certs(base / "certs", "node=localhost")["node"]
    optfile = options_file(base, "inter_node_tls.config", certs)
    container_optfile = "/etc/rabbitmq/inter_node_tls.config"
    env = broker_environment()
    server_args = env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert container_optfile in server_args and env["RABBITMQ_CTL_ERL_ARGS"] == server_args
    erl_args = server_args.replace(container_optfile, str(optfile))
    run = uuid.uuid4().hex[:6]
    names = [f"tls_{run}_{index}@localhost" for index in (1, 2)]
    ports = free_ports(4)
    nodes = [
        TlsRabbit(
            str(base / f"n{index}"),
            names[index],
            ports[2 * index],
            ports[2 * index + 1],
            certs,
            erl_args,
            names,
        )
        for index in (0, 1)
    ]
    try:
        nodes[0].start(START_SECONDS)
        nodes[1].start(START_SECONDS)
        yield nodes, base
    finally:
        for node in reversed(nodes):
            node.stop()


def running_nodes(node, timeout=60):
    """The cluster's running nodes, as the CLI tool (over TLS distribution)
    reports them. Its first contact right after start-up can fail on a
    loaded machine while the second node joins (exit 69, node unreachable,
    seen once in CI at a load average of 10): waited for until it answers."""
    tries = []

    def answered():
        tries.append(node.cli("rabbitmqctl", "cluster_status", "--formatter", "json"))
        return tries[-1].returncode == 0 and tries[-1]

    try:
        result = wait_until(answered, timeout, interval=2, message="cluster_status to answer")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; its last error: {tries[-1].stderr}") from None
    return sorted(json.loads(result.stdout)["running_nodes"])


def test_brokers_cluster_over_tls_distribution(rabbit_pair):
    """The nodes form one cluster, though they (and their CLI tools) speak
    Erlang distribution over TLS only; a message sent to a quorum queue
    through one node is read through the other."""
    nodes, _ = rabbit_pair
    assert running_nodes(nodes[0]) == sorted(node.node for node in nodes)
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    with amqp_connection(nodes[0].port, nodes[0].certs) as sender:
        channel = sender.channel()
        channel.queue_declare(
            queue, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"}
        )
        channel.confirm_select()
        channel.basic_publish(amqp.Message("across the cluster"), routing_key=queue)
    with amqp_connection(nodes[1].port, nodes[1].certs) as receiver:
        channel = receiver.channel()
        message = channel.basic_get(queue, no_ack=True)
        channel.queue_delete(queue)
    assert message is not None and message.body == "across the cluster"


def test_healthcheck_passes_over_tls(rabbit_pair):
    """compose.cluster.yaml's healthcheck command works with the CLI's TLS
    distribution settings."""
    nodes, _ = rabbit_pair
    test = Deployment.from_files(CLUSTER).services({"RABBITMQ_ERLANG_COOKIE": "x"})[
        CLUSTER.brokers[0]
    ]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "rabbitmq-diagnostics"]
    result = nodes[0].cli(test[1], *test[2:])
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_distribution_is_refused(rabbit_pair):
    """A CLI tool (or node) holding the cookie but speaking plain
    distribution cannot reach a node."""
    nodes, _ = rabbit_pair
    cookie_only = re.sub(r"\s*-proto_dist\s+\S+|\s*-ssl_dist_optfile\s+\S+", "", nodes[0].erl_args)
    assert "-setcookie" in cookie_only and "inet_tls" not in cookie_only
    result = nodes[0].cli("rabbitmqctl", "status", erl_args=cookie_only)
    assert result.returncode != 0
    assert running_nodes(nodes[0])  # the node itself answers TLS


def test_distribution_with_another_ca_is_refused(rabbit_pair):
    """A CLI tool with the cookie and TLS, but a certificate from another CA,
    cannot reach a node: the node verifies its peers."""
    nodes, base = rabbit_pair
    other = make_certs(base / "other-ca", "intruder=localhost")["intruder"]
    optfile = options_file(base, "intruder.config", other)
    intruder_args = re.sub(
        r"-ssl_dist_optfile\s+\S+", f"-ssl_dist_optfile {optfile}", nodes[0].erl_args
    )
    result = nodes[0].cli("rabbitmqctl", "status", erl_args=intruder_args)
    assert result.returncode != 0
    assert running_nodes(nodes[0])  # the node itself answers its own CA's


def test_clients_need_tls_and_a_certificate(rabbit_pair):
    """Clients reach a node only over TLS on its amqps port (there is no
    plain listener), showing a certificate the node trusts."""
    nodes, base = rabbit_pair
    node = nodes[0]
    listeners = node.cli("rabbitmq-diagnostics", "-q", "listeners", "--formatter", "json")
    assert listeners.returncode == 0, listeners.stderr
    protocols = {each["protocol"] for each in json.loads(listeners.stdout)["listeners"]}
    assert protocols == {"amqp/ssl", "clustering"}
    amqp_connection(node.port, node.certs).close()  # the node takes a client that has all
    with pytest.raises((ssl.SSLError, OSError)):
        amqp_connection(node.port, ca=node.certs / "ca.pem").close()
    other = make_certs(base / "client-other-ca", "client=localhost")["client"]
    with pytest.raises((ssl.SSLError, OSError)):
        amqp_connection(node.port, other, ca=node.certs / "ca.pem").close()
    plain = amqp.Connection(
        f"localhost:{node.port}", userid="guest", password="guest", connect_timeout=10
    )
    with pytest.raises((OSError, amqp.exceptions.AMQPError)):
        plain.connect()


# --- Galera and HAProxy --------------------------------------------------------


class TlsGalera(PrivateServer):
    """A Galera node with deploy/galera/galera.cnf as written but for the
    certificates' directory, the cluster's addresses and what a node needs
    of its own on a shared machine (directories, ports)."""

    name = "Galera node (TLS)"

    def __init__(self, base_dir, index, ports, cluster_address, certs):
        super().__init__(base_dir, "mariadb.log")
        os.makedirs(os.path.join(base_dir, "tmp"))
        self.port, gcomm_port, ist_port, sst_port = ports
        self.datadir = os.path.join(base_dir, "data")
        self.socket = os.path.join(base_dir, "mysqld.sock")
        self.config = os.path.join(base_dir, "my.cnf")
        self.certs = certs
        self.bootstrap = False
        cnf = deploy_text(
            "deploy/galera/galera.cnf",
            [
                ("/etc/mysql/tls", str(certs)),
                ("gcomm://galera-1,galera-2,galera-3", f"gcomm://{cluster_address}"),
            ],
        )
        # Each node's ports go into the one provider options line.
        cnf, found = re.subn(
            r'^(wsrep_provider_options = ".*)"$',
            rf'\1;base_port={gcomm_port};ist.recv_addr=127.0.0.1:{ist_port};gcache.size=32M"',
            cnf,
            flags=re.MULTILINE,
        )
        assert found == 1, "galera.cnf has no single wsrep_provider_options line"
        with open(self.config, "w") as config:
            config.write(
                cnf
                + f"""
[mariadb]
user=mysql
datadir={self.datadir}
socket={self.socket}
port={self.port}
bind-address=127.0.0.1
pid-file={base_dir}/mysqld.pid
tmpdir={base_dir}/tmp
innodb_buffer_pool_size=64M
wsrep_node_name=node{index}
wsrep_node_address=127.0.0.1:{gcomm_port}
wsrep_sst_receive_address=127.0.0.1:{sst_port}
wsrep_sst_auth={SST_USER}:{SST_PASSWORD}
"""
            )
        self.gcomm_port = gcomm_port

    def install(self):
        subprocess.run(
            [
                "mariadb-install-db",
                f"--defaults-file={self.config}",
                "--user=mysql",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )

    def command(self):
        return [MARIADBD, f"--defaults-file={self.config}"] + (
            ["--wsrep-new-cluster"] if self.bootstrap else []
        )

    def sql(self, statement):
        """A statement as root over the node's socket (which TLS does not
        concern), as the image's healthcheck and initdb scripts do."""
        return subprocess.run(
            ["mariadb", "--no-defaults", "-S", self.socket, "-uroot", "-N", "-B", "-e", statement],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()

    def answers(self):
        try:
            return self.sql("SHOW STATUS LIKE 'wsrep_local_state'").split()[-1] == SYNCED
        except (subprocess.CalledProcessError, IndexError):  # not up yet
            return False


SST_USER, SST_PASSWORD = "sst", "sst-" + uuid.uuid4().hex[:12]
CLIENT_USER, CLIENT_PASSWORD = "tls_client", "tls-" + uuid.uuid4().hex[:12]


def run_initdb_scripts(node):
    """deploy/galera/initdb/*.sh as the MariaDB image runs them on a new
    node: sourced, with its docker_process_sql."""
    for script in sorted((ROOT / "deploy" / "galera" / "initdb").glob("*.sh")):
        subprocess.run(
            [
                "bash",
                "-c",
                'docker_process_sql() { mariadb --no-defaults -S "$SOCKET" -uroot "$@"; }; . "$0"',
                str(script),
            ],
            env={
                **os.environ,
                "SOCKET": node.socket,
                "GALERA_SST_USER": SST_USER,
                "GALERA_SST_PASSWORD": SST_PASSWORD,
            },
            check=True,
            capture_output=True,
            timeout=60,
        )


class Proxy(PrivateServer):
    """HAProxy with deploy/haproxy/haproxy.cfg, its servers being the two
    nodes (the file's third is left out: there is none here)."""

    name = "HAProxy"

    def __init__(self, base_dir, nodes, port, monitor_port):
        super().__init__(base_dir, "haproxy.log")
        self.port, self.monitor_port = port, monitor_port
        replacements = [
            ("bind :3306", f"bind 127.0.0.1:{port}"),
            ("bind 127.0.0.1:8404", f"bind 127.0.0.1:{monitor_port}"),
            ("    server galera-3 galera-3:3306 check backup\n", ""),
        ] + [
            (f"galera-{index}:3306", f"127.0.0.1:{node.port}")
            for index, node in enumerate(nodes, 1)
        ]
        self.config = os.path.join(base_dir, "haproxy.cfg")
        with open(self.config, "w") as config:
            config.write(deploy_text("deploy/haproxy/haproxy.cfg", replacements))

    def command(self):
        return [HAPROXY, "-db", "-f", self.config]

    def answers(self):
        try:
            return self.monitor() == 200
        except OSError:
            return False

    def monitor(self):
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


def tls_client(port, certs, user=CLIENT_USER, password=CLIENT_PASSWORD, **options):
    """A client connection over TLS to localhost:port, checking the
    server's certificate and host name against the CA in `certs`."""
    return pymysql.connect(
        host="localhost",
        port=port,
        user=user,
        password=password,
        ssl_ca=str(certs / "ca.pem"),
        ssl_verify_cert=True,
        ssl_verify_identity=True,
        connect_timeout=10,
        **options,
    )


def hand_to_mysql(directory):
    subprocess.run(["chown", "-R", "mysql:mysql", directory], check=True, timeout=60)


@pytest.fixture(scope="module")
def galera_pair():
    """Node 1 bootstrapped and given the initdb scripts' users, then node 2
    joining it (a full state transfer: its data directory is a copy with no
    cluster state), then HAProxy in front of both."""
    # mariadbd runs as mysql, which must reach the directory (pytest's
    # temporary directories are root's alone).
    base = tempfile.mkdtemp(prefix="galera-tls-")
    os.chmod(base, 0o755)
    servers = []
    try:
        identities = make_certs(Path(base) / "certs", "node=localhost,127.0.0.1")
        os.chmod(identities["node"].parent, 0o755)  # make-certs.sh leaves it to its owner
        ports = free_ports(10)
        cluster_address = f"127.0.0.1:{ports[1]},127.0.0.1:{ports[5]}"
        nodes = [
            TlsGalera(
                os.path.join(base, f"galera{index}"),
                index,
                ports[4 * (index - 1) : 4 * index],
                cluster_address,
                identities["node"],
            )
            for index in (1, 2)
        ]
        hand_to_mysql(base)
        nodes[0].install()
        shutil.copytree(nodes[0].datadir, nodes[1].datadir)
        hand_to_mysql(base)
        nodes[0].bootstrap = True
        servers.append(nodes[0].start(START_SECONDS))
        run_initdb_scripts(nodes[0])
        nodes[0].sql(
            f"CREATE USER '{CLIENT_USER}'@'%' IDENTIFIED BY '{CLIENT_PASSWORD}';"
            f"GRANT ALL ON tls_test.* TO '{CLIENT_USER}'@'%'"
        )
        servers.append(nodes[1].start(START_SECONDS))
        proxy_dir = os.path.join(base, "proxy")
        os.makedirs(proxy_dir)
        servers.append(Proxy(proxy_dir, nodes, ports[8], ports[9]).start(60))
        yield nodes, servers[2], Path(base)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_galera_replicates_over_tls(galera_pair):
    """The nodes form one cluster; node 2's full state transfer was
    encrypted; a row committed through node 1 is read through node 2,
    each over a TLS client connection."""
    nodes, _, _ = galera_pair
    assert nodes[1].sql("SHOW STATUS LIKE 'wsrep_cluster_size'").split()[-1] == "2"
    log = open(nodes[1].log_path, errors="replace").read()
    assert "Using openssl based encryption with socat" in log
    with tls_client(nodes[0].port, nodes[0].certs, autocommit=True) as first:
        with first.cursor() as cursor:
            cursor.execute("CREATE DATABASE IF NOT EXISTS tls_test")
            cursor.execute("CREATE TABLE tls_test.t (id INT PRIMARY KEY, note VARCHAR(20))")
            cursor.execute("INSERT INTO tls_test.t VALUES (1, 'replicated')")
    with tls_client(nodes[1].port, nodes[1].certs) as second:
        with second.cursor() as cursor:
            cursor.execute("SET SESSION wsrep_sync_wait = 1")
            cursor.execute("SELECT note FROM tls_test.t WHERE id = 1")
            assert cursor.fetchone() == ("replicated",)
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert cursor.fetchone()[1].startswith("TLS")


def tls_handshake(port, certs):
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.check_hostname = False  # Galera checks the chain, not names
    context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            return tls.version()


def test_replication_port_speaks_tls_to_the_cluster_ca_only(galera_pair):
    """Galera's replication port completes a TLS handshake with a peer
    holding a certificate from the cluster's CA, and refuses one from
    another CA."""
    nodes, _, base = galera_pair
    assert tls_handshake(nodes[0].gcomm_port, nodes[0].certs).startswith("TLS")
    other = make_certs(base / "other-ca", "intruder=localhost")["intruder"]
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_handshake(nodes[0].gcomm_port, other)


def test_database_refuses_plain_clients(galera_pair):
    """A client whose login works over TLS is refused without it (MariaDB
    10.11 answers "access denied"). PyMySQL negotiates unverified TLS by
    itself when a server offers it: ssl_disabled makes it a plain client."""
    nodes, _, _ = galera_pair
    with tls_client(nodes[0].port, nodes[0].certs):
        pass
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(
            host="localhost",
            port=nodes[0].port,
            user=CLIENT_USER,
            password=CLIENT_PASSWORD,
            connect_timeout=10,
            ssl_disabled=True,
        )
    assert refused.value.args[0] == ER_ACCESS_DENIED


def test_proxy_checks_nodes_and_passes_tls_through(galera_pair):
    """HAProxy's check sees the nodes up although they require TLS, and a
    client reaches the database through it over TLS, checking the node's
    certificate."""
    nodes, proxy, _ = galera_pair
    assert proxy.monitor() == 200
    with tls_client(proxy.port, nodes[0].certs) as client:
        with client.cursor() as cursor:
            cursor.execute("SELECT @@wsrep_node_name")
            assert cursor.fetchone() == ("node1",)

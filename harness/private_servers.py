"""A RabbitMQ node and a MariaDB server of a run's own, with every hop
encrypted or none (for the tests, and for the benchmark's TLS profile,
which runs the same scenarios on both to compare them).

With `tls=True` they take TLS only: the node has no plain listener and its
only user logs in with a client certificate (EXTERNAL), the database
requires TLS (`require_secure_transport`) and the services' user a client
certificate; the certificates are made for the run (harness.certificates).
`settings` then has the services reach them that way, and serve the gateway
on HTTPS (`https_ca` is what a client of the gateway trusts). With
`tls=False` they are the same servers in clear, and `settings` is empty.
With `management=True` the node also serves its management API
(harness.private_rabbit: over TLS, HTTPS wanting a client certificate).

It is a set of servers for `harness.sandbox.sandbox` (as `LocalServers`
is): a database and a vhost per sandbox, created and dropped here.
"""

import os
import uuid

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from harness.broker import vhost_of
from harness.certificates import CLIENT_USER, Certificates
from harness.private_mariadb import PrivateMariaDB
from harness.private_rabbit import PrivateRabbit
from harness.tables import sql
from order_pipeline.broker import Broker
from order_pipeline.database import connect_args
from order_pipeline.tls import TlsFiles

# The database user the services log in as over TLS: a client certificate
# required.
DB_USER = "pipeline_tls"


class PrivateServers:
    def __init__(self, base_dir, tls=True, management=False):
        self.base_dir = base_dir
        self.tls = tls
        self.certs = Certificates(self._dir("certs")) if tls else None
        self.rabbit = PrivateRabbit(self._dir("rabbit"), tls=self.certs, management=management)
        self.mariadb = PrivateMariaDB(self._dir("mariadb"), tls=self.certs)
        self.https_ca = self.certs.ca.cert if tls else None
        # The broker's user: the client certificate's, or guest in clear.
        self.broker_user = CLIENT_USER if tls else "guest"

    def _dir(self, name):
        path = os.path.join(self.base_dir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def start(self, timeout=120):
        """Start both at once; return when both answer. Over TLS the
        broker's only user is then the client certificate's: a connection
        made without the certificate cannot log in."""
        self.launch()
        return self.wait_started(timeout)

    def launch(self):
        self.rabbit.launch()
        self.mariadb.launch()
        return self

    def wait_started(self, timeout=120):
        self.rabbit.wait_answering(timeout)
        self.mariadb.wait_answering(timeout)
        if self.tls:
            self.rabbit.add_certificate_user(CLIENT_USER)
            self.rabbit.ctl("delete_user", "guest")
        return self

    def stop(self):
        for server in (self.rabbit, self.mariadb):
            if server.process is not None:
                server.stop()

    # --- a sandbox's database and vhost ------------------------------------

    def create_database(self):
        """A new migrated database; over TLS, a URI for it as the services'
        user, who may log in only with a client certificate of the run's CA."""
        admin_uri = self.mariadb.create_database()
        if not self.tls:
            return admin_uri
        name = make_url(admin_uri).database
        self._as_root(
            admin_uri,
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%' REQUIRE X509",
            f"GRANT ALL ON `{name}`.* TO '{DB_USER}'@'%'",
        )
        return str(make_url(admin_uri).set(username=DB_USER))

    def drop_database(self, db_uri):
        self._as_root(db_uri, f"DROP DATABASE IF EXISTS `{make_url(db_uri).database}`")

    def _as_root(self, db_uri, *statements):
        engine = self.admin_engine(db_uri)
        try:
            for statement in statements:
                sql(engine, statement)
        finally:
            engine.dispose()

    def admin_engine(self, db_uri):
        """An engine on `db_uri` as root (over TLS if the server takes only
        that): for reading the tables. The caller disposes of it."""
        url = make_url(db_uri).set(username="root")
        return create_engine(url, connect_args=connect_args(self.mariadb.server_tls))

    def create_vhost(self):
        """A new vhost for the broker's user; its URI (over TLS without a
        user: the client certificate names it)."""
        vhost = "private_" + uuid.uuid4().hex[:10]
        self.rabbit.ctl("add_vhost", vhost)
        self.rabbit.ctl("set_permissions", "-p", vhost, self.broker_user, ".*", ".*", ".*")
        if self.tls:
            return f"amqps://localhost:{self.rabbit.port}/{vhost}"
        return f"amqp://guest:guest@127.0.0.1:{self.rabbit.port}/{vhost}"

    def drop_vhost(self, amqp_uri):
        self.rabbit.ctl("delete_vhost", vhost_of(amqp_uri))

    def rabbitmqctl(self, *args):
        return self.rabbit.ctl(*args)

    # --- how the services and clients reach them -----------------------------

    @property
    def settings(self):
        """The services' settings for these servers (none in clear)."""
        if not self.tls:
            return {}
        certs = self.certs
        return {
            "AMQP_SSL_CA_FILE": certs.ca.cert,
            "AMQP_SSL_CERT_FILE": certs.client.cert,
            "AMQP_SSL_KEY_FILE": certs.client.key,
            "DB_SSL_CA_FILE": certs.ca.cert,
            "DB_SSL_CERT_FILE": certs.client.cert,
            "DB_SSL_KEY_FILE": certs.client.key,
            "GATEWAY_TLS_CERT_FILE": certs.server.cert,
            "GATEWAY_TLS_KEY_FILE": certs.server.key,
        }

    def broker(self, amqp_uri):
        """How a client reaches `amqp_uri` (with the client certificate
        over TLS)."""
        if not self.tls:
            return Broker(amqp_uri)
        certs = self.certs
        files = TlsFiles(certs.ca.cert, certs.client.cert, certs.client.key, "AMQP_SSL")
        return Broker(amqp_uri, files)

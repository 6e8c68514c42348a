"""A broker and a database that take TLS only, for the tests and the
benchmark: a RabbitMQ node with no plain listener (EXTERNAL login for a
client certificate) and a MariaDB with `require_secure_transport`, both
with the certificates of one run (harness.certificates), in one directory.

`pipeline_settings()` are the services' settings to reach them with every
hop encrypted: amqps:// with a client certificate, the database with its
CA and a client certificate (its user requires one), the gateway on
HTTPS. `https_ca` is what a client of the gateway trusts.
"""

import os
import uuid

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from harness.certificates import CLIENT_USER, Certificates
from harness.private_mariadb import PrivateMariaDB
from harness.private_rabbit import PrivateRabbit
from harness.tables import sql
from order_pipeline.broker import Broker
from order_pipeline.database import connect_args
from order_pipeline.tls import TlsFiles

# The database user the services log in as: a client certificate required.
DB_USER = "pipeline_tls"


class TlsServers:
    def __init__(self, base_dir):
        self.base_dir = base_dir
        self.certs = Certificates(self._dir("certs"))
        self.rabbit = PrivateRabbit(self._dir("rabbit"), tls=self.certs)
        self.mariadb = PrivateMariaDB(self._dir("mariadb"), tls=self.certs)
        self.https_ca = self.certs.ca.cert

    def _dir(self, name):
        path = os.path.join(self.base_dir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def start(self, timeout=120):
        """Start both at once; return when both answer (over TLS). Then
        the broker's only user is the client certificate's: a connection
        made without the certificate cannot log in."""
        self.rabbit.launch()
        self.mariadb.launch()
        self.rabbit.wait_answering(timeout)
        self.mariadb.wait_answering(timeout)
        self.rabbit.add_certificate_user(CLIENT_USER)
        self.rabbit.ctl("delete_user", "guest")
        return self

    def stop(self):
        for server in (self.rabbit, self.mariadb):
            if server.process is not None:
                server.stop()

    def create_database(self):
        """A new migrated database, and a URI for it as the services' user,
        who may log in only with a client certificate of this run's CA."""
        admin_uri = self.mariadb.create_database()
        name = make_url(admin_uri).database
        sql(
            self.admin_engine(admin_uri),
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%' REQUIRE X509",
        )
        sql(self.admin_engine(admin_uri), f"GRANT ALL ON `{name}`.* TO '{DB_USER}'@'%'")
        return str(make_url(admin_uri).set(username=DB_USER))

    def admin_engine(self, db_uri):
        """An engine on `db_uri` as root (over TLS): for reading the tables."""
        url = make_url(db_uri).set(username="root")
        return create_engine(url, connect_args=connect_args(self.mariadb.server_tls))

    def db_tls(self):
        return TlsFiles(
            ca_file=self.certs.ca.cert,
            cert_file=self.certs.client.cert,
            key_file=self.certs.client.key,
            prefix="DB_SSL",
        )

    def create_vhost(self):
        """A new vhost for the certificate's user; its URI, without a user
        (the client certificate names it)."""
        vhost = "tls_" + uuid.uuid4().hex[:10]
        self.rabbit.ctl("add_vhost", vhost)
        self.rabbit.ctl("set_permissions", "-p", vhost, CLIENT_USER, ".*", ".*", ".*")
        return f"amqps://localhost:{self.rabbit.port}/{vhost}"

    def broker(self, amqp_uri):
        """How a client of this run reaches `amqp_uri`: with the client
        certificate."""
        return Broker(amqp_uri, self.amqp_tls())

    def amqp_tls(self):
        return TlsFiles(
            ca_file=self.certs.ca.cert,
            cert_file=self.certs.client.cert,
            key_file=self.certs.client.key,
            prefix="AMQP_SSL",
        )

    def pipeline_settings(self):
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

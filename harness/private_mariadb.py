"""A MariaDB server of a run's own (harness.private_servers), for the TLS
tests and the benchmark's TLS profile: a data directory made by
mariadb-install-db in a temporary directory, its own port and socket, root
without a password over TCP. It runs as a child process of the run, in its
own process group. (The fault suite's server, tests/faults/private_mariadb.py,
is the same without TLS.)

With `tls` (harness.certificates.Certificates) it takes TCP connections
over TLS only (`require_secure_transport`), presenting the server
certificate for "localhost": its `server_uri` names that host, and
`server_tls` is what a client trusts.
"""

import os
import subprocess
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.private_server import PrivateServer
from harness.processes import free_port
from order_pipeline.commands.migrate import migrate
from order_pipeline.database import connect_args
from order_pipeline.tls import TlsFiles

MARIADBD = "/usr/sbin/mariadbd"


class PrivateMariaDB(PrivateServer):
    name = "MariaDB"
    poll_seconds = 0.1

    def __init__(self, base_dir, tls=None):
        super().__init__(base_dir, "mariadb.log")
        self.datadir = os.path.join(base_dir, "data")
        self.port = free_port()
        self.tls = tls
        host = "127.0.0.1" if tls is None else "localhost"
        self.server_uri = f"mysql+pymysql://root@{host}:{self.port}/"
        self.server_tls = None if tls is None else TlsFiles(ca_file=tls.ca.cert, prefix="DB_SSL")
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--datadir=" + self.datadir,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=120,
        )

    def command(self):
        return [
            MARIADBD,
            "--no-defaults",
            "--user=root",
            "--datadir=" + self.datadir,
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--socket=" + os.path.join(self.base_dir, "mariadb.sock"),
            "--pid-file=" + os.path.join(self.base_dir, "mariadb.pid"),
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--max-connections=500",
            *self._tls_options(),
        ]

    def _tls_options(self):
        if self.tls is None:
            return []
        return [
            "--ssl-ca=" + self.tls.ca.cert,
            "--ssl-cert=" + self.tls.server.cert,
            "--ssl-key=" + self.tls.server.key,
            "--require-secure-transport=ON",
        ]

    def answers(self):
        arguments = {**connect_args(self.server_tls), "connect_timeout": 1}
        engine = create_engine(self.server_uri, connect_args=arguments)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # not up yet
            return False
        finally:
            engine.dispose()

    def create_database(self):
        """A new, migrated database on this server; returns its URI."""
        db_uri = str(
            make_url(self.server_uri).set(database="orders_faults_" + uuid.uuid4().hex[:10])
        )
        migrate(db_uri, self.server_tls)
        return db_uri

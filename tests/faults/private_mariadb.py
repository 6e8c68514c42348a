"""A MariaDB server of the suite's own, to stop and start at will.

The machine's MariaDB (3306) serves other test runs, so the database-outage
scenario runs against a second server: a data directory made by
mariadb-install-db in a temporary directory, its own port and socket, root
without a password over TCP (what DB_URI expects). It runs as a child process
of the test run, in its own process group.
"""

import os
import subprocess
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.private_server import PrivateServer
from harness.processes import free_port
from order_pipeline.commands.migrate import migrate

MARIADBD = "/usr/sbin/mariadbd"


class PrivateMariaDB(PrivateServer):
    name = "MariaDB"
    poll_seconds = 0.1

    def __init__(self, base_dir):
        super().__init__(base_dir, "mariadb.log")
        self.datadir = os.path.join(base_dir, "data")
        self.port = free_port()
        self.server_uri = f"mysql+pymysql://root@127.0.0.1:{self.port}/"
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
        ]

    def answers(self):
        engine = create_engine(self.server_uri, connect_args={"connect_timeout": 1})
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
        migrate(db_uri)
        return db_uri

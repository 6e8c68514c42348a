"""A MariaDB server of the suite's own, to stop and start at will.

The machine's MariaDB (3306) serves other test runs, so the database-outage
scenario runs against a second server: a data directory made by
mariadb-install-db in a temporary directory, its own port and socket, root
without a password over TCP (what DB_URI expects). It runs as a child process
of the test run, in its own process group.
"""
import os
import signal
import subprocess
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from order_pipeline.migrate import migrate
from tests.support.processes import free_port

MARIADBD = "/usr/sbin/mariadbd"


class PrivateMariaDB:
    def __init__(self, base_dir):
        self.base_dir = base_dir
        self.datadir = os.path.join(base_dir, "data")
        self.port = free_port()
        self.server_uri = "mysql+pymysql://root@127.0.0.1:{}/".format(self.port)
        self.log_path = os.path.join(base_dir, "mariadb.log")
        self.process = None
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--datadir=" + self.datadir,
             "--auth-root-authentication-method=normal", "--skip-test-db",
             "--user=root"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=120)

    def start(self, timeout=60):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [MARIADBD, "--no-defaults", "--user=root",
             "--datadir=" + self.datadir,
             "--bind-address=127.0.0.1", "--port={}".format(self.port),
             "--socket=" + os.path.join(self.base_dir, "mariadb.sock"),
             "--pid-file=" + os.path.join(self.base_dir, "mariadb.pid"),
             "--skip-name-resolve", "--innodb-buffer-pool-size=32M",
             "--max-connections=500"],
            cwd=self.base_dir, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("private MariaDB did not start; see {}".format(
                    self.log_path))
            time.sleep(0.1)
        return self

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

    def stop(self, timeout=30):
        """A clean shutdown (SIGTERM), killing it if it takes too long."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Not reaped yet, so the group id is still this server's.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def create_database(self):
        """A new, migrated database on this server; returns its URI."""
        db_uri = str(make_url(self.server_uri).set(
            database="orders_faults_" + uuid.uuid4().hex[:10]))
        migrate(db_uri)
        return db_uri

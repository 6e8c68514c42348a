"""A MariaDB server of the tests' own, beside the machine's (3306): a data
directory made by mariadb-install-db, an option file of its own, its own
port, socket and temporary directory, root without a password over TCP (what
DB_URI expects), run as a child process in its own process group
(harness.private_server).

The fault suite's database outage stops one (tests/faults/private_mariadb.py);
each node of the cluster suite's Galera cluster is one with the wsrep settings
on top (harness.galera_cluster).
"""

import os
import subprocess

import pymysql

from harness.private_server import PrivateServer

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_SECONDS = 180


class MariaDBServer(PrivateServer):
    """`MariaDBServer(base_dir, port, user="root", settings={...})`: the
    option file is base_dir/my.cnf, `settings` added to (or replacing) the
    common ones. `install()` makes the data directory; `start()` runs it."""

    name = "MariaDB"
    poll_seconds = 0.1

    def __init__(self, base_dir, port, user="root", settings=None, host="127.0.0.1"):
        super().__init__(base_dir, "mariadb.log")
        self.host = host
        self.port = port
        self.user = user
        self.datadir = os.path.join(base_dir, "data")
        self.config = os.path.join(base_dir, "my.cnf")
        self.server_uri = f"mysql+pymysql://root@{host}:{port}/"
        tmpdir = os.path.join(base_dir, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        options = {
            "user": user,
            "datadir": self.datadir,
            "socket": os.path.join(base_dir, "mysqld.sock"),
            "port": port,
            "bind-address": host,
            "pid-file": os.path.join(base_dir, "mysqld.pid"),
            "tmpdir": tmpdir,
            "skip-name-resolve": None,
            "max_connections": 500,
            "innodb_buffer_pool_size": "32M",
            **(settings or {}),
        }
        with open(self.config, "w") as config:
            config.write("[mariadbd]\n")
            for key, value in options.items():
                config.write(key + "\n" if value is None else f"{key}={value}\n")

    def install(self):
        """The data directory, with root and the system tables only."""
        subprocess.run(
            [
                "mariadb-install-db",
                f"--defaults-file={self.config}",
                f"--user={self.user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=INSTALL_SECONDS,
        )

    def command(self):
        return [MARIADBD, f"--defaults-file={self.config}"]

    def connect(self, timeout=2):
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user="root",
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )

    def answers(self):
        try:
            connection = self.connect()
        except pymysql.MySQLError:  # not up yet
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except pymysql.MySQLError:
            return False
        finally:
            connection.close()

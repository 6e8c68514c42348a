"""HAProxy (Debian's `haproxy`) in front of the Galera nodes: the one
address the services use as DB_URI.

Health check: an external check that asks each node for wsrep_local_state
and passes only on 4 (Synced), run every second, two failures to take a
node out and two passes to put it back. `option mysql-check` would only see
that mysqld completes a handshake: it would keep sending traffic to a node
that is still joining, one that has dropped out of the primary component
(it answers, but refuses every query), and the donor of an rsync state
transfer (it is locked for the whole copy). A stopped node fails the check
at connect, a frozen one (SIGSTOP) by timing out.

Writes go through one node at a time, and stay on it: node 1 first; when
the node in use is taken out, HAProxy closes the connections it held
(`on-marked-down shutdown-sessions`, so clients reconnect at once rather
than wait on a dead or frozen server) and every new connection goes to the
next node that is up; a node that comes back does not take the traffic back
(a one-entry stick table holds the node in use). Writes through several
Galera nodes at once conflict at certification (error 1213) far more often,
and each change of node costs every client its connections and opens a
moment in which a read on the new node may not yet see a write committed
through the old one (apply lag: Galera certifies a commit on every node,
but applies it on the others a little later).
"""

import csv
import os
import socket

import pymysql

from harness.ports import free_port
from harness.private_server import PrivateServer

HAPROXY = "/usr/sbin/haproxy"
BACKEND = "galera"

CHECK_SCRIPT = """#!/bin/sh
# HAProxy external check: $3 is the node's address, $4 its port.
state=$(timeout 3 mariadb --no-defaults --protocol=tcp -h "$3" -P "$4" -uroot \\
    --connect-timeout=2 -N -B \\
    -e "SET SESSION wsrep_sync_wait = 0; SHOW GLOBAL STATUS LIKE 'wsrep_local_state'" 2>/dev/null | cut -f2)
[ "$state" = 4 ]
"""


class GaleraProxy(PrivateServer):
    name = "HAProxy"

    def __init__(self, base_dir, nodes, host="127.0.0.1"):
        super().__init__(base_dir, "haproxy.log")
        self.nodes = nodes
        self.host = host
        self.port = free_port()
        self.socket_path = os.path.join(base_dir, "admin.sock")
        self.config = os.path.join(base_dir, "haproxy.cfg")
        check = os.path.join(base_dir, "wsrep-synced.sh")
        with open(check, "w") as script:
            script.write(CHECK_SCRIPT)
        os.chmod(check, 0o755)
        servers = "\n".join(
            f"    server {node.node_name} {node.host}:{node.port} check"
            + ("" if i == 0 else " backup")
            for i, node in enumerate(nodes)
        )
        with open(self.config, "w") as config:
            config.write(
                f"""global
    stats socket {self.socket_path} mode 600 level admin
    external-check
    insecure-fork-wanted
    maxconn 2000

defaults
    mode tcp
    log stdout format raw local0
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout check 4s

listen {BACKEND}
    bind {host}:{self.port}
    option external-check
    external-check path "/usr/bin:/bin"
    external-check command {check}
    stick-table type integer size 1
    stick on int(1)
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
{servers}
"""
            )
        self.server_uri = f"mysql+pymysql://root@{host}:{self.port}/"

    def command(self):
        return [HAPROXY, "-db", "-f", self.config]

    def answers(self):
        try:
            return all(state == "UP" for state in self.server_states().values())
        except OSError:  # not listening yet
            return False

    def admin(self, command):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(self.socket_path)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self):
        """{node name: "UP" | "DOWN" | ...} as HAProxy's health checks see them."""
        rows = csv.DictReader(self.admin("show stat").lstrip("# ").splitlines())
        return {
            row["svname"]: row["status"].split()[0]
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def writer(self):
        """The name of the node a new connection through the proxy reaches
        (`@@wsrep_node_name`)."""
        connection = pymysql.connect(
            host=self.host, port=self.port, user="root", connect_timeout=5, read_timeout=5
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@wsrep_node_name")
                return cursor.fetchone()[0]
        finally:
            connection.close()

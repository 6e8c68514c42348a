"""A MariaDB server of the suite's own, to stop and start at will.

The machine's MariaDB (3306) serves other test runs, so the database-outage
scenario runs against a second server (harness.mariadb_server), in a
temporary directory, with a database of its own per scenario.
"""

import uuid

from sqlalchemy.engine import make_url

from harness.mariadb_server import MariaDBServer
from harness.processes import free_port
from order_pipeline.commands.migrate import migrate


class PrivateMariaDB(MariaDBServer):
    def __init__(self, base_dir):
        super().__init__(base_dir, free_port())
        self.install()

    def create_database(self):
        """A new, migrated database on this server; returns its URI."""
        db_uri = str(
            make_url(self.server_uri).set(database="orders_faults_" + uuid.uuid4().hex[:10])
        )
        migrate(db_uri)
        return db_uri

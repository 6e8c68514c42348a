"""Schema management: no manual create_all; the migration command creates
the database and brings it to the latest version, repeatably."""
import subprocess
import sys

from alembic import command
from sqlalchemy.engine import make_url

from order_pipeline.migrations import SERVICE_MIGRATIONS, alembic_config
from tests.support import infra
from tests.support.infra import sql
from tests.support.processes import CONFIG, ROOT

TABLES = {"orders", "order_outbox", "generator_state", "order_process", "processing_totals",
          "alembic_version_generator", "alembic_version_processor"}


def tables(db_uri):
    return {row[0] for row in sql(db_uri, "SHOW TABLES")}


def test_the_migrate_command_creates_the_database_and_is_repeatable():
    db_uri = str(make_url(infra.DB_SERVER_URI).set(database=infra.unique_name()))
    env = {"DB_URI": db_uri, "PATH": "/usr/bin:/bin"}
    try:
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-m", "order_pipeline.migrate", "--config", CONFIG],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert "schema is up to date" in done.stdout
        assert tables(db_uri) == TABLES
    finally:
        infra.drop_test_database(db_uri)


def test_each_service_records_its_own_schema_version(db_uri):
    for package, version_table in SERVICE_MIGRATIONS:
        (version,), = sql(db_uri, "SELECT version_num FROM {}".format(version_table))
        assert version


def test_migrations_downgrade_and_upgrade_cleanly(db_uri):
    sql(db_uri, "INSERT INTO generator_state (id, running, orders_created) VALUES (1, 1, 0)")
    for package, _ in reversed(SERVICE_MIGRATIONS):
        command.downgrade(alembic_config(package, db_uri), "base")
    assert tables(db_uri) == {"alembic_version_generator", "alembic_version_processor"}
    for package, _ in SERVICE_MIGRATIONS:
        command.upgrade(alembic_config(package, db_uri), "head")
    assert tables(db_uri) == TABLES


def test_order_process_references_orders(db_uri):
    rows = sql(db_uri,
               "SELECT referenced_table_name, referenced_column_name "
               "FROM information_schema.key_column_usage WHERE table_schema = DATABASE() "
               "AND table_name = 'order_process' AND column_name = 'order_id' "
               "AND referenced_table_name IS NOT NULL")
    assert [tuple(r) for r in rows] == [("orders", "id")]

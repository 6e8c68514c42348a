"""Schema management: no manual create_all; the migration command creates
the database, brings every service's schema to its latest version, says
what it did, and can be run again."""

import re
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

import generator_service.models
import processor_service.models
from harness import sandbox
from harness.processes import CONFIG, ROOT
from harness.tables import sql
from order_pipeline.commands.migrate import VERSION_TABLES, alembic_config, current_revision

TABLES = {
    "orders",
    "order_outbox",
    "generator_state",
    "order_counts",
    "idempotency_keys",
    "order_process",
    "processing_totals",
    "latency_histogram",
    "events_set_aside",
    "dead_letters",
    "service_instances",
    "handling_seconds",
    "pruned_results",
    "dead_letter_audit",
    "alembic_version_generator",
    "alembic_version_processor",
}
MODELS = {
    "generator_service": generator_service.models.Base,
    "processor_service": processor_service.models.Base,
}


def tables(db_uri):
    return {row[0] for row in sql(db_uri, "SHOW TABLES")}


def run_migrate(db_uri, *args):
    done = subprocess.run(
        [sys.executable, "-m", "order_pipeline.commands.migrate", "--config", CONFIG, *args],
        cwd=ROOT,
        env={"DB_URI": db_uri, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_migrate_command_says_what_it_did_and_is_repeatable():
    db_uri = make_url(sandbox.DB_SERVER_URI).set(database=sandbox.unique_name())
    db_uri = db_uri.render_as_string(hide_password=False)
    try:
        first = run_migrate(db_uri)
        assert first.splitlines() == [
            "created the database",
            "generator_service: applied g0001, g0002, g0003, g0004, g0005, g0006",
            "processor_service: applied p0001, p0002, p0003, p0004, p0005, p0006, p0007, p0008",
        ]
        again = run_migrate(db_uri)
        assert again.splitlines() == [
            "generator_service: already at g0006",
            "processor_service: already at p0008",
        ]
        assert tables(db_uri) == TABLES
    finally:
        sandbox.drop_test_database(db_uri)


def test_each_service_records_its_own_schema_version(db_uri):
    for package, version_table in VERSION_TABLES.items():
        ((version,),) = sql(db_uri, f"SELECT version_num FROM {version_table}")
        assert version == current_revision(package, db_uri)


def test_models_and_migrations_agree(db_uri):
    """What `make migration` would write for an unchanged model: nothing."""
    engine = create_engine(db_uri)
    try:
        with engine.connect() as connection:
            for package, base in MODELS.items():
                context = MigrationContext.configure(
                    connection,
                    opts={
                        "include_name": lambda name, type_, parent, base=base: (
                            type_ != "table" or name in base.metadata.tables
                        )
                    },
                )
                assert compare_metadata(context, base.metadata) == [], package
    finally:
        engine.dispose()


def test_migrations_downgrade_and_upgrade_cleanly(db_uri):
    sql(db_uri, "INSERT INTO generator_state (id, running) VALUES (1, 1)")
    for package in reversed(list(VERSION_TABLES)):
        command.downgrade(alembic_config(package, db_uri), "base")
    assert tables(db_uri) == {"alembic_version_generator", "alembic_version_processor"}
    for package in VERSION_TABLES:
        command.upgrade(alembic_config(package, db_uri), "head")
    assert tables(db_uri) == TABLES


def test_the_order_count_moves_between_the_state_row_and_its_shards(db_uri):
    sql(db_uri, "INSERT INTO generator_state (id, running) VALUES (1, 1)")
    sql(db_uri, "UPDATE order_counts SET orders_created = orders_created + 7 WHERE shard = 3")
    sql(db_uri, "UPDATE order_counts SET orders_created = orders_created + 2 WHERE shard = 9")
    config = alembic_config("generator_service", db_uri)
    command.downgrade(config, "g0003")
    assert sql(db_uri, "SELECT orders_created FROM generator_state") == [(9,)]
    command.upgrade(config, "head")
    assert sql(db_uri, "SELECT shard, orders_created FROM order_counts WHERE shard = 0") == [(0, 9)]
    assert sql(db_uri, "SELECT COUNT(*), SUM(orders_created) FROM order_counts") == [(16, 9)]


def test_dead_letters_kept_before_their_groups_are_fingerprinted_by_the_upgrade(db_uri):
    config = alembic_config("processor_service", db_uri)
    command.downgrade(config, "p0005")
    for letter_id, order_id, frame in [
        ("00000000000000a1", 41, "processor_service/processing.py:process_order_batch:90"),
        ("00000000000000a2", 42, "processor_service/processing.py:process_order_batch:97"),
    ]:
        sql(
            db_uri,
            "INSERT INTO dead_letters (id, state, dead_lettered_at, attempts, reason, error_type,"
            " error_message, failing_frame, failures, body, headers) VALUES (:id, 'parked',"
            " UTC_TIMESTAMP(6), 1, 'r', 'OrderNotFound', :message, :frame, '[]', '{}', '{}')",
            id=letter_id,
            message=f"order {order_id} does not exist",
            frame=frame,
        )
    command.upgrade(config, "head")
    rows = sql(db_uri, "SELECT fingerprint, cause FROM dead_letters ORDER BY id")
    assert len(rows) == 2 and rows[0] == rows[1]  # one cause, whatever the order and the line
    assert rows[0].cause == "order <n> does not exist"
    assert re.fullmatch("[0-9a-f]{16}", rows[0].fingerprint)


def test_the_migration_command_writes_a_revision_on_the_service_head(db_uri):
    """`make migration SERVICE=... MESSAGE=...`, against a database at head
    with unchanged models: a new, empty revision after the service's head."""
    versions = Path(ROOT, "generator_service", "migrations", "versions")
    before = set(versions.glob("*.py"))
    try:
        run_migrate(db_uri, "revision", "generator_service", "nothing changed")
        (written,) = set(versions.glob("*.py")) - before
        text = written.read_text()
        assert '"""nothing changed' in text
        assert "down_revision = 'g0006'" in text or 'down_revision = "g0006"' in text
        assert "op." not in text.split("def upgrade")[1].split("def downgrade")[0]
    finally:
        for path in set(versions.glob("*.py")) - before:
            path.unlink()

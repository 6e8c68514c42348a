"""The tests' own databases and vhosts on the machine's servers
(harness.sandbox): a test database, copied from a template, is what the
migrations make; the vhosts, made and deleted in batches, are each new and
usable, and a dropped one is gone once its batch is deleted (also the
canary of the RabbitMQ internal function the deletion calls)."""

from kombu import Connection
from sqlalchemy import create_engine, text

from harness.broker import local_rabbitmqctl
from harness.sandbox import (
    AMQP_SERVER_URI,
    Vhosts,
    create_test_database,
    database_uri,
    drop_test_database,
    unique_name,
)
from order_pipeline.commands.migrate import current_revision, migrate


def existing_vhosts():
    return set(local_rabbitmqctl("list_vhosts", "--no-table-headers").split())


def test_vhosts_are_handed_out_new_and_usable_and_deleted_in_batches():
    vhosts = Vhosts(batch=2)
    try:
        first, second = vhosts.take(), vhosts.take()
        assert first != second and {first, second} <= existing_vhosts()
        with Connection(AMQP_SERVER_URI.rstrip("/") + "/" + first) as connection:
            channel = connection.channel()
            channel.queue_declare("sandbox-check", auto_delete=True)
            channel.close()
        vhosts.drop(first)
        assert first in existing_vhosts()  # waits for its batch
        vhosts.drop(second)
        assert not {first, second} & existing_vhosts()
        third = vhosts.take()  # from a new batch, its other vhost still unused
        unused = set(vhosts.ready)
        assert len(unused) == 1 and {third} | unused <= existing_vhosts()
        vhosts.drop(third)
    finally:
        vhosts.close()
    # At exit: the dropped one, and the one never handed out.
    assert not ({third} | unused) & existing_vhosts()


def schema_and_rows(db_uri):
    """{table: (CREATE TABLE statement, sorted rows)}."""
    engine = create_engine(db_uri)
    try:
        with engine.connect() as connection:
            tables = connection.execute(text("SHOW TABLES")).scalars().all()
            return {
                table: (
                    connection.execute(text(f"SHOW CREATE TABLE `{table}`")).one()[1],
                    sorted(map(tuple, connection.execute(text(f"SELECT * FROM `{table}`")))),
                )
                for table in tables
            }
    finally:
        engine.dispose()


def test_a_test_database_is_what_the_migrations_make():
    migrated = database_uri(unique_name())
    copied = create_test_database()
    try:
        migrate(migrated)
        expected, got = schema_and_rows(migrated), schema_and_rows(copied)
        assert sorted(got) == sorted(expected)
        for table in expected:
            assert got[table] == expected[table], table
        assert "FOREIGN KEY" in got["order_outbox"][0]
        assert migrate(copied)[-2:] == [
            f"{package}: already at {current_revision(package, copied)}"
            for package in ("generator_service", "processor_service")
        ]
    finally:
        drop_test_database(migrated)
        drop_test_database(copied)

"""Alembic plumbing: each service keeps its own migrations and version table.

`SERVICE_MIGRATIONS` lists the services that own tables, in the order their
schemas must be applied (order_process has a foreign key to orders).
"""
import os

from alembic import command, context
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVICE_MIGRATIONS = [
    ("generator_service", "alembic_version_generator"),
    ("processor_service", "alembic_version_processor"),
]


def alembic_config(package, db_uri):
    config = AlembicConfig()
    config.set_main_option("script_location", os.path.join(ROOT, package, "migrations"))
    # Passed as an attribute, not an ini option, so '%' in a password is safe.
    config.attributes["db_uri"] = db_uri
    return config


def upgrade_all(db_uri, revision="head"):
    for package, _ in SERVICE_MIGRATIONS:
        command.upgrade(alembic_config(package, db_uri), revision)


def run_migrations_online(target_metadata, version_table):
    """The body of each service's migrations/env.py."""
    engine = create_engine(context.config.attributes["db_uri"])
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                version_table=version_table,
                # Only look at this service's own tables.
                include_name=lambda name, type_, parent: (
                    type_ != "table" or name in target_metadata.tables),
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()

"""Schema migrations: each service keeps its own Alembic history and
version table, and this module applies them all.

    python -m order_pipeline.commands.migrate [--config config.yml]
        create the database if it is missing and bring every service's
        schema up to date (what `make migrate` runs; safe to repeat)
    python -m order_pipeline.commands.migrate revision SERVICE "message"
        write a new migration for SERVICE by comparing its models with the
        database at DB_URI (what `make migration` runs)
"""

import argparse
import importlib.util
import os

from alembic import command, context
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from order_pipeline.config import load_config
from order_pipeline.database import connect_args, create_database_if_missing
from order_pipeline.settings import db_tls
from order_pipeline.settings import db_uri as read_db_uri
from order_pipeline.tls import TlsFiles

# The services that own tables, with their Alembic version tables.
VERSION_TABLES = {
    "generator_service": "alembic_version_generator",
    "processor_service": "alembic_version_processor",
}


def alembic_config(package: str, db_uri: str, tls: TlsFiles | None = None) -> AlembicConfig:
    config = AlembicConfig()
    # The package's own folder, found without importing it (commands import
    # no service).
    package_dir = os.path.dirname(importlib.util.find_spec(package).origin)
    config.set_main_option("script_location", os.path.join(package_dir, "migrations"))
    # Passed as attributes, not ini options, so '%' in a password is safe.
    config.attributes["db_uri"] = db_uri
    config.attributes["tls"] = tls
    config.attributes["version_table"] = VERSION_TABLES[package]
    return config


def current_revision(package: str, db_uri: str, tls: TlsFiles | None = None) -> str | None:
    engine = create_engine(db_uri, connect_args=connect_args(tls))
    try:
        with engine.connect() as connection:
            migration = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLES[package]}
            )
            return migration.get_current_revision()
    finally:
        engine.dispose()


def upgrade_all(db_uri: str, tls: TlsFiles | None = None) -> dict[str, list[str]]:
    """Bring every service's schema to its head; {package: [revisions
    applied, oldest first]}."""
    applied = {}
    for package in VERSION_TABLES:
        config = alembic_config(package, db_uri, tls)
        before = current_revision(package, db_uri, tls)
        command.upgrade(config, "head")
        after = current_revision(package, db_uri, tls)
        script = ScriptDirectory.from_config(config)
        applied[package] = [
            revision.revision
            for revision in reversed(list(script.iterate_revisions(after, before)))
        ]
    return applied


def migrate(db_uri: str, tls: TlsFiles | None = None) -> list[str]:
    """Create the database if missing and apply every service's migrations
    (over TLS with `tls`, DB_SSL_*); returns what was done, one line each."""
    done = []
    if create_database_if_missing(db_uri, tls):
        done.append("created the database")
    for package, revisions in upgrade_all(db_uri, tls).items():
        if revisions:
            done.append(f"{package}: applied {', '.join(revisions)}")
        else:
            done.append(f"{package}: already at {current_revision(package, db_uri, tls)}")
    return done


def run_migrations_online(target_metadata) -> None:
    """The body of each service's migrations/env.py."""
    attributes = context.config.attributes
    engine = create_engine(attributes["db_uri"], connect_args=connect_args(attributes.get("tls")))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                version_table=context.config.attributes["version_table"],
                # Only look at this service's own tables.
                include_name=lambda name, type_, parent: (
                    type_ != "table" or name in target_metadata.tables
                ),
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yml")
    commands = parser.add_subparsers(dest="command")
    revision = commands.add_parser("revision", help="write a new migration for a service")
    revision.add_argument("service", choices=sorted(VERSION_TABLES))
    revision.add_argument("message")
    args = parser.parse_args(argv)
    # A StartupError exits with status 1 and a one-line message.
    config = load_config(args.config)
    db_uri, tls = read_db_uri(config), db_tls(config)
    if args.command == "revision":
        command.revision(
            alembic_config(args.service, db_uri, tls), message=args.message, autogenerate=True
        )
        return
    for line in migrate(db_uri, tls):
        print(line)


if __name__ == "__main__":
    main()

"""Create or update every identity of order_pipeline.identities: the broker
users with their permissions, the database users with their grants.

    python -m order_pipeline.commands.provision [--migrate] [--local-dev]
        (make provision; safe to repeat: it makes things match, and prints
        one line per user)

What it is given, from the environment (or, for each, VAR_FILE naming a
file that holds it):

    RABBITMQ_ADMIN_URL   the management API with an administrator's user and
                         password, http://admin:secret@rabbitmq:15672/
    RABBITMQ_VHOST       the vhost the services use (default /)
    DB_ADMIN_URI         a database user that may create users and grant,
                         mysql+pymysql://root:secret@db:3306/orders; its
                         database is the pipeline's
    ORDER_GENERATOR_AMQP_PASSWORD, ORDER_PROCESSOR_AMQP_PASSWORD,
    ORDER_GATEWAY_AMQP_PASSWORD, ORDER_OPERATOR_AMQP_PASSWORD,
    ORDER_GENERATOR_DB_PASSWORD, ORDER_PROCESSOR_DB_PASSWORD,
    ORDER_MIGRATE_DB_PASSWORD
                         each user's password

    STARTUP_WAIT_SECONDS how long to keep trying while the broker or the
                         database does not answer yet (default 0: once);
                         in compose, where it starts with them
    AMQP_SSL_CA_FILE, AMQP_SSL_CERT_FILE, AMQP_SSL_KEY_FILE
                         with an https:// RABBITMQ_ADMIN_URL, the CA its
                         certificate is checked against and the client
                         certificate shown (the broker's, as for AMQP)
    DB_SSL_CA_FILE, DB_SSL_CERT_FILE, DB_SSL_KEY_FILE
                         TLS to DB_ADMIN_URI's server, checked, for the
                         administrator and the migrations alike (as the
                         services' DB_SSL_*)

There are no defaults, except with --local-dev on a broker and database on
this machine (loopback addresses): the machine's administrators (guest,
root) and each password the user's own name.

A service's tables are those of its models (`<package>.models`), so a table
added by a migration gets its grant at the next run; MariaDB grants only on
tables that exist, so the run after the migrations grants them. With
--migrate it runs the migrations itself, as order_migrate, between creating
the users and granting the tables: one step for a new deployment and for an
upgrade.
"""

import argparse
import importlib
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from order_pipeline.broker_admin import BrokerAdmin
from order_pipeline.commands.migrate import migrate
from order_pipeline.config import FILE_SUFFIX
from order_pipeline.database import connect_args, server_url
from order_pipeline.database_admin import (
    ensure_user,
    existing_tables,
    grant_database,
    grant_tables,
)
from order_pipeline.errors import StartupError
from order_pipeline.identities import IDENTITIES, Identity, identity
from order_pipeline.settings import startup_wait_seconds
from order_pipeline.startup import retry_until_up
from order_pipeline.tls import TlsFiles, tls_files

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
LOCAL_DEV_DEFAULTS = {
    "RABBITMQ_ADMIN_URL": "http://guest:guest@localhost:15672/",
    "DB_ADMIN_URI": "mysql+pymysql://root@127.0.0.1:3306/orders",
}
MIGRATION_USER = "order_migrate"


def password_variable(name: str, system: str) -> str:
    """ORDER_GENERATOR_AMQP_PASSWORD for ("order_generator", "AMQP")."""
    return f"{name.upper()}_{system}_PASSWORD"


def table_names(package: str) -> list[str]:
    """The tables of `package`'s models. Loaded by name at run time, as the
    migrate command has alembic load each service's migrations/env.py
    (which imports these models): the plumbing imports no service."""
    models = importlib.import_module(f"{package}.models")
    return sorted(models.Base.metadata.tables)


def read_variable(environ, key: str, default: str | None = None) -> str:
    """`key` from the environment, or from the file `key_FILE` names."""
    path = environ.get(key + FILE_SUFFIX)
    if path:
        if environ.get(key):
            raise StartupError(f"set {key} or {key}{FILE_SUFFIX}, not both")
        try:
            with open(path) as source:
                return source.read().rstrip("\r\n")
        except OSError as exc:
            raise StartupError(
                f"cannot read {key}{FILE_SUFFIX}={path}: {exc.strerror or exc}"
            ) from None
    value = environ.get(key, "")
    if value:
        return value
    if default is not None:
        return default
    raise StartupError(f"{key} is not set (nor {key}{FILE_SUFFIX})")


@dataclass(frozen=True)
class Inputs:
    rabbitmq_admin_url: str
    vhost: str
    db_admin_uri: str
    passwords: dict  # (identity name, "AMQP" or "DB") -> password
    prefix: str = ""  # before every user name (tests on a shared server)
    broker_tls: TlsFiles | None = None  # AMQP_SSL_*, for the management API
    db_tls: TlsFiles | None = None  # DB_SSL_*

    def user(self, identity: Identity) -> str:
        return self.prefix + identity.name


def read_inputs(environ=os.environ, local_dev=False, prefix="") -> Inputs:
    url = read_variable(environ, "RABBITMQ_ADMIN_URL", _dev(local_dev, "RABBITMQ_ADMIN_URL"))
    db_admin_uri = read_variable(environ, "DB_ADMIN_URI", _dev(local_dev, "DB_ADMIN_URI"))
    if local_dev:
        remote = [
            key
            for key, host in (
                ("RABBITMQ_ADMIN_URL", urlsplit(url).hostname),
                ("DB_ADMIN_URI", make_url(db_admin_uri).host),
            )
            if host not in LOCAL_HOSTS
        ]
        if remote:
            raise StartupError(
                f"--local-dev is for a broker and database on this machine; "
                f"{', '.join(remote)} points elsewhere"
            )
    if not make_url(db_admin_uri).database:
        raise StartupError("DB_ADMIN_URI must name the pipeline's database, e.g. .../orders")
    passwords = {}
    for each in IDENTITIES:
        for system, grant in (("AMQP", each.broker), ("DB", each.database)):
            if grant is not None:
                default = prefix + each.name if local_dev else None
                passwords[each.name, system] = read_variable(
                    environ, password_variable(each.name, system), default
                )
    return Inputs(
        rabbitmq_admin_url=url,
        vhost=read_variable(environ, "RABBITMQ_VHOST", "/"),
        db_admin_uri=db_admin_uri,
        passwords=passwords,
        prefix=prefix,
        broker_tls=read_tls(environ, "AMQP_SSL"),
        db_tls=read_tls(environ, "DB_SSL"),
    )


def read_tls(environ, prefix: str) -> TlsFiles | None:
    """`prefix`_CA_FILE, _CERT_FILE and _KEY_FILE, checked, or None if
    none is set."""
    return tls_files(
        prefix, *(environ.get(f"{prefix}_{part}_FILE", "") for part in ("CA", "CERT", "KEY"))
    )


def _dev(local_dev, key):
    return LOCAL_DEV_DEFAULTS[key] if local_dev else None


# --- the broker --------------------------------------------------------------


def provision_broker(inputs: Inputs, say) -> None:
    admin = BrokerAdmin(inputs.rabbitmq_admin_url, tls=inputs.broker_tls)
    if not admin.vhost_exists(inputs.vhost):
        raise StartupError(f"the broker has no vhost {inputs.vhost!r} (RABBITMQ_VHOST)")
    for each in IDENTITIES:
        if each.broker is None:
            continue
        user = inputs.user(each)
        created = admin.put_user(user, inputs.passwords[each.name, "AMQP"])
        admin.set_permissions(inputs.vhost, user, each.broker.permissions())
        admin.set_topic_permissions(inputs.vhost, user, each.broker.topic_permissions())
        say(
            f"broker user {user}: {'created' if created else 'password set'}; "
            f"its permissions on vhost {inputs.vhost} ({each.role})"
        )


# --- the database ------------------------------------------------------------


def provision_database(inputs: Inputs, say, run_migrations=False) -> None:
    url = make_url(inputs.db_admin_uri)
    engine = create_engine(
        server_url(inputs.db_admin_uri), connect_args=connect_args(inputs.db_tls)
    )
    try:
        with _as_admin(inputs, engine) as connection:
            _provision_migrator(inputs, connection, url.database, say)
        if run_migrations:
            _run_migrations(inputs, url, say)
        with _as_admin(inputs, engine) as connection:
            not_yet = _provision_services(inputs, connection, url.database, say)
    finally:
        engine.dispose()
    if not_yet:
        raise StartupError(
            f"tables not created yet: {', '.join(not_yet)}; run the migrations "
            "(provision --migrate, or migrate as order_migrate), then provision again"
        )


@contextmanager
def _as_admin(inputs, engine):
    """A transaction as the administrator; an error is one line naming
    DB_ADMIN_URI."""
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        shown = make_url(inputs.db_admin_uri).render_as_string(hide_password=True)
        raise StartupError(
            f"cannot provision the database users as DB_ADMIN_URI={shown} "
            f"({getattr(exc, 'orig', exc)}); check that the server runs and that this user "
            "may create users and grant, or set DB_ADMIN_URI"
        ) from None


def _provision_migrator(inputs, connection, database, say):
    migrator = identity(MIGRATION_USER)
    user = inputs.user(migrator)
    created = ensure_user(connection, user, inputs.passwords[migrator.name, "DB"])
    grant_database(connection, user, database, migrator.database.privileges)
    say(
        f"database user {user}: {'created' if created else 'password set'}; "
        f"{', '.join(migrator.database.privileges)} on the database {database} "
        f"({migrator.role})"
    )


def _run_migrations(inputs, url, say):
    migrator = identity(MIGRATION_USER)
    user = inputs.user(migrator)
    migration_uri = url.set(username=user, password=inputs.passwords[migrator.name, "DB"])
    try:
        lines = migrate(migration_uri.render_as_string(hide_password=False), inputs.db_tls)
    except SQLAlchemyError as exc:
        raise StartupError(
            f"the migrations failed as {user} ({getattr(exc, 'orig', exc)})"
        ) from None
    for line in lines:
        say(f"migrations as {user}: {line}")


def _provision_services(inputs, connection, database, say) -> list[str]:
    """Each service's database user, granted its tables; returns the tables
    that do not exist yet."""
    present = existing_tables(connection, database)
    not_yet = []
    for each in IDENTITIES:
        grant = each.database
        if grant is None or grant.package is None:
            continue
        user = inputs.user(each)
        tables = [table for table in table_names(grant.package) if table in present]
        not_yet += [table for table in table_names(grant.package) if table not in present]
        created = ensure_user(connection, user, inputs.passwords[each.name, "DB"])
        grant_tables(connection, user, database, {t: grant.privileges_on(t) for t in tables})
        say(
            f"database user {user}: {'created' if created else 'password set'}; "
            f"{granted(grant, tables)} ({each.role})"
        )
    return not_yet


def granted(grant, tables) -> str:
    """`SELECT, INSERT, UPDATE on a, b; SELECT, INSERT on c`: what a user
    was granted on its tables, by privileges."""
    if not tables:
        return f"{', '.join(grant.privileges)} on no table yet"
    by_privileges = {}
    for table in tables:
        by_privileges.setdefault(grant.privileges_on(table), []).append(table)
    return "; ".join(
        f"{', '.join(privileges)} on {', '.join(named)}"
        for privileges, named in by_privileges.items()
    )


def provision(inputs: Inputs, say=print, run_migrations=False) -> None:
    provision_broker(inputs, say)
    provision_database(inputs, say, run_migrations=run_migrations)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m order_pipeline.commands.provision", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="run the migrations as order_migrate before granting the services' tables",
    )
    parser.add_argument(
        "--local-dev",
        action="store_true",
        help="the machine's administrators and user-named passwords where none is set "
        "(loopback servers only)",
    )
    # Test runs on a shared server name their users apart.
    parser.add_argument("--user-prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    inputs = read_inputs(local_dev=args.local_dev, prefix=args.user_prefix)
    # Every step makes things match, so a run cut short by a server that is
    # not up yet is simply run again.
    retry_until_up(
        lambda: provision(
            inputs, say=lambda line: print(line, flush=True), run_migrations=args.migrate
        ),
        startup_wait_seconds(
            {"STARTUP_WAIT_SECONDS": read_variable(os.environ, "STARTUP_WAIT_SECONDS", "0")}
        ),
        "the broker and the database",
    )


if __name__ == "__main__":
    sys.exit(main())

"""Database users and their grants on MariaDB/MySQL, made to match a wanted
set: what is missing is granted, what is beyond it is revoked (never all
revoked first, so a running service keeps what it still needs).

Accounts are `'<name>'@'%'`: the services connect from other hosts
(containers, pods). Names of databases and tables are checked to be plain
identifiers before they are written into a statement; user names and
passwords go as bound parameters.
"""

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

ACCOUNT_HOST = "%"
IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def identifier(name: str) -> str:
    """`name` quoted for a statement; refuses anything but [A-Za-z0-9_]."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def schema_pattern(database: str) -> str:
    """A database-level grant's name: `_` is a wildcard there, so escaped,
    the grant names this database alone."""
    identifier(database)
    return "`" + database.replace("_", r"\_") + "`"


def grantee(user: str) -> str:
    """The account as information_schema writes it."""
    return f"'{user}'@'{ACCOUNT_HOST}'"


def ensure_user(connection: Connection, user: str, password: str) -> bool:
    """Create the account or set its password; True if it was created."""
    existed = connection.execute(
        text("SELECT COUNT(*) FROM mysql.user WHERE User = :user AND Host = :host"),
        {"user": user, "host": ACCOUNT_HOST},
    ).scalar()
    account = {"user": user, "host": ACCOUNT_HOST, "password": password}
    if existed:
        connection.execute(text("ALTER USER :user@:host IDENTIFIED BY :password"), account)
    else:
        connection.execute(text("CREATE USER :user@:host IDENTIFIED BY :password"), account)
    return not existed


def drop_user(connection: Connection, user: str) -> None:
    connection.execute(
        text("DROP USER IF EXISTS :user@:host"), {"user": user, "host": ACCOUNT_HOST}
    )


def existing_tables(connection: Connection, database: str) -> set[str]:
    rows = connection.execute(
        text("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :database"),
        {"database": database},
    )
    return {row[0] for row in rows}


def grant_tables(
    connection: Connection, user: str, database: str, privileges: dict[str, tuple]
) -> None:
    """Exactly `privileges[table]` on each table named (each must exist),
    and no other privilege anywhere: none on other tables, none on the
    database as a whole, none on every database."""
    _revoke_global(connection, user)
    _sync_schema(connection, user, database, set())
    current = _table_privileges(connection, user, database)
    wanted = {(table, privilege) for table, each in privileges.items() for privilege in each}
    for table, privilege in sorted(current - wanted):
        connection.execute(
            text(
                f"REVOKE {privilege} ON {identifier(database)}.{identifier(table)} FROM :user@:host"
            ),
            {"user": user, "host": ACCOUNT_HOST},
        )
    for table in sorted(privileges):
        missing = [p for p in privileges[table] if (table, p) not in current]
        if missing:
            connection.execute(
                text(
                    f"GRANT {', '.join(missing)} ON {identifier(database)}.{identifier(table)} "
                    "TO :user@:host"
                ),
                {"user": user, "host": ACCOUNT_HOST},
            )


def grant_database(connection: Connection, user: str, database: str, privileges: tuple) -> None:
    """Exactly `privileges` on the whole database (which need not exist
    yet), and none on single tables or on every database."""
    _revoke_global(connection, user)
    for table, privilege in sorted(_table_privileges(connection, user, database)):
        connection.execute(
            text(
                f"REVOKE {privilege} ON {identifier(database)}.{identifier(table)} FROM :user@:host"
            ),
            {"user": user, "host": ACCOUNT_HOST},
        )
    _sync_schema(connection, user, database, set(privileges))


def _sync_schema(connection, user, database, wanted: set[str]):
    pattern = schema_pattern(database)
    rows = connection.execute(
        text(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
            "WHERE GRANTEE = :grantee"
        ),
        {"grantee": grantee(user)},
    )
    current = {(schema, privilege) for schema, privilege in rows}
    # Grants on this database, written escaped or not.
    mine = {privilege for schema, privilege in current if schema in (database, pattern.strip("`"))}
    for schema, privilege in sorted(current):
        if schema in (database, pattern.strip("`")) and privilege not in wanted:
            connection.execute(
                text(f"REVOKE {privilege} ON `{schema}`.* FROM :user@:host"),
                {"user": user, "host": ACCOUNT_HOST},
            )
    missing = sorted(wanted - mine)
    if missing:
        connection.execute(
            text(f"GRANT {', '.join(missing)} ON {pattern}.* TO :user@:host"),
            {"user": user, "host": ACCOUNT_HOST},
        )


def _table_privileges(connection, user, database) -> set[tuple[str, str]]:
    rows = connection.execute(
        text(
            "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
            "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database"
        ),
        {"grantee": grantee(user), "database": database},
    )
    return {(table, privilege) for table, privilege in rows}


def _revoke_global(connection, user):
    rows = connection.execute(
        text(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES "
            "WHERE GRANTEE = :grantee AND PRIVILEGE_TYPE <> 'USAGE'"
        ),
        {"grantee": grantee(user)},
    )
    for (privilege,) in rows.fetchall():
        connection.execute(
            text(f"REVOKE {privilege} ON *.* FROM :user@:host"),
            {"user": user, "host": ACCOUNT_HOST},
        )

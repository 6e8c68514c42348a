#!/bin/bash
# What the official image's entrypoint does with the variables compose.yaml
# sets, on a data directory's first start: MARIADB_ROOT_PASSWORD (or
# MARIADB_RANDOM_ROOT_PASSWORD) for root, from anywhere; MARIADB_DATABASE;
# MARIADB_USER and MARIADB_PASSWORD with every privilege on that database;
# then /docker-entrypoint-initdb.d/ (*.sql run, *.sh sourced, with
# docker_process_sql). Arguments starting with "-" are mariadbd's options.
set -euo pipefail
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

if [ "${1:0:1}" = "-" ]; then
    set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ]; then
    exec "$@"
fi
chown mysql:mysql "$datadir" /run/mysqld

docker_process_sql() {  # the initdb scripts' way to run SQL as root
    mariadb --protocol=socket --socket="$socket" -uroot "$@"
}

sql_string() {  # a value quoted as an SQL string literal
    printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g")"
}

if [ ! -d "$datadir/mysql" ]; then
    root_password=${MARIADB_ROOT_PASSWORD:-}
    if [ -z "$root_password" ] && [ -n "${MARIADB_RANDOM_ROOT_PASSWORD:-}" ]; then
        root_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
        echo "GENERATED ROOT PASSWORD: $root_password"
    fi
    if [ -z "$root_password" ]; then
        echo "set MARIADB_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD" >&2
        exit 1
    fi
    echo "initialising $datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=normal >/dev/null
    # As the official image's: replication off, so that a Galera node
    # neither starts a cluster nor joins one while it is initialised.
    mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" "${@:2}" \
        --wsrep_on=OFF &
    pid=$!
    for _ in $(seq 60); do
        docker_process_sql -e "SELECT 1" >/dev/null 2>&1 && break
        sleep 1
    done
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$root_password");"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$root_password");"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [ -n "${MARIADB_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
        fi
        if [ -n "${MARIADB_USER:-}" ] && [ -n "${MARIADB_PASSWORD:-}" ]; then
            echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"
            if [ -n "${MARIADB_DATABASE:-}" ]; then
                echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';"
            fi
        fi
    } | docker_process_sql
    # Root has a password from here on: the initdb scripts log in with it.
    docker_process_sql() {
        MYSQL_PWD="$root_password" mariadb --protocol=socket --socket="$socket" -uroot "$@"
    }
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) echo "running $script"; docker_process_sql <"$script" ;;
            *.sh) echo "sourcing $script"; . "$script" ;;
        esac
    done
    kill "$pid"
    wait "$pid" || true
    echo "initialised $datadir"
fi
exec mariadbd --user=mysql --datadir="$datadir" "${@:2}"

#!/bin/bash
# Run once by the MariaDB image's entrypoint when a node's data directory is
# first initialised (a joining node then receives the donor's copy, users
# included). Creates the user state transfers log in as, and the user
# HAProxy's health check connects as (no password, no privileges: it only
# completes a handshake).
set -euo pipefail
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS '${GALERA_SST_USER}'@'localhost' IDENTIFIED BY '${GALERA_SST_PASSWORD}';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO '${GALERA_SST_USER}'@'localhost';
CREATE USER IF NOT EXISTS 'haproxy_check'@'%';
SQL

# Sourced (not executed: it is not executable, so it has the entrypoint's
# docker_process_sql) by the MariaDB image's entrypoint when a node's data
# directory is first initialised; a joining node then receives the donor's
# copy, users included. Creates the user Galera's state transfers
# (mariabackup) log in as, and the user HAProxy's health check connects as:
# no password and no privileges, since it only completes a handshake.
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS '${GALERA_SST_USER}'@'localhost' IDENTIFIED BY '${GALERA_SST_PASSWORD}';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO '${GALERA_SST_USER}'@'localhost';
CREATE USER IF NOT EXISTS 'haproxy_check'@'%';
SQL

#!/bin/sh
# The official image's healthcheck.sh, for the two tests compose.yaml asks
# for: --connect (a TCP connection, so it fails while the first start's
# socket-only initialisation runs) and --innodb_initialized.
set -eu
for test in "$@"; do
    case "$test" in
        --connect)
            mariadb-admin --protocol=tcp -h127.0.0.1 -uhealthcheck ping 2>&1 \
                | grep -q -e "is alive" -e "Access denied" ;;
        --innodb_initialized)
            mariadb -uroot --protocol=socket -N -e \
                "select 1 from information_schema.ENGINES where engine='InnoDB' and support in ('YES','DEFAULT')" \
                | grep -q 1 ;;
    esac
done

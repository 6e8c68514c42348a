#!/bin/bash
# Entrypoint of the Galera nodes in compose.cluster.yaml: the MariaDB
# image's own, with --wsrep-new-cluster added on the node that has
# GALERA_BOOTSTRAP=1 when there is no cluster yet to join, that is when its
# data directory is new, or when Galera marked it the node to start from
# (safe_to_bootstrap: 1, left on the last node to stop cleanly; compose
# stops galera-2 and galera-3 before galera-1, which they depend on).
# Everywhere else, and after a crash, the node joins the others: a cluster
# that lost every node at once needs the bootstrap chosen by hand
# (docs/deployment.md).
set -euo pipefail
state=/var/lib/mysql/grastate.dat
if [ "${GALERA_BOOTSTRAP:-0}" = 1 ]; then
    if [ ! -e "$state" ] || grep -q '^safe_to_bootstrap: *1' "$state"; then
        set -- "$@" --wsrep-new-cluster
    fi
fi
exec docker-entrypoint.sh "$@"

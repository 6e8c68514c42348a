#!/bin/sh
# What the official image's entrypoint does with the variables compose.yaml
# sets: RABBITMQ_DEFAULT_USER and RABBITMQ_DEFAULT_PASS become the user the
# broker creates on its first start (an administrator), reachable from other
# containers; then the server runs in the foreground as the rabbitmq user.
# The management API is left at the plugin's default, plain HTTP on 15672,
# unless a file in conf.d configures HTTPS (compose.cluster.yaml's
# management_tls.conf), which is then its only listener, as in the
# official image.
set -eu
conf=/etc/rabbitmq/rabbitmq.conf
{
    echo "loopback_users.guest = false"
    echo "listeners.tcp.default = 5672"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
        echo "default_user = $RABBITMQ_DEFAULT_USER"
    fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then
        echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    fi
} >"$conf"
chown rabbitmq:rabbitmq "$conf"
chmod 0600 "$conf"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq

# The rabbitmq user's home holds its Erlang cookie; logs go to the
# container's output, as the official image's do.
export HOME=/var/lib/rabbitmq RABBITMQ_LOGS=- RABBITMQ_SASL_LOGS=-
if [ "$1" = rabbitmq-server ]; then
    shift
    exec setpriv --reuid rabbitmq --regid rabbitmq --init-groups \
        /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"

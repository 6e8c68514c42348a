#!/usr/bin/env bash
# Makes the certificates compose.cluster.yaml and deploy/k8s mount: a CA of
# your own and, signed by it, one certificate per identity (a broker node, a
# database node, a service), with openssl. For trying the files out; in
# production, use your organisation's CA or cert-manager and lay the files
# out the same way (docs/deployment.md#tls-certificates).
#
#   deploy/tls/make-certs.sh DIR                     the identities of compose.cluster.yaml
#   deploy/tls/make-certs.sh DIR NAME=DNS[,DNS...]   these identities instead
#
# Writes DIR/ca/ca.pem and DIR/ca/ca.key (the CA: keep ca.key somewhere
# safe, nothing mounts it), and for each identity DIR/NAME/ca.pem (a copy of
# the CA certificate, to verify peers), DIR/NAME/cert.pem (its certificate:
# common name NAME, the DNS names given, valid as a TLS server and client)
# and DIR/NAME/key.pem. An existing CA in DIR is reused, so identities can
# be added later; an existing identity is made again.
#
# DIR is made readable by you alone (0700); the files in it are 0644, so the
# containers' own users (rabbitmq, mysql, the services' 10001) can read the
# ones mounted into them, while on the host nobody else can reach them.
set -euo pipefail

dir=${1:?usage: make-certs.sh DIR [NAME=DNS[,DNS...]]...}
shift
if [ "$#" -eq 0 ]; then
    # The names each peer connects by in compose.cluster.yaml. The services
    # reach the database through db-proxy, so each Galera node's certificate
    # carries that name too; the gateway's is also for healthchecks and
    # browsers on the host (localhost, 127.0.0.1). The services' names are
    # their broker and database users (RabbitMQ's EXTERNAL mechanism maps a
    # certificate's common name to a user).
    set -- \
        rabbitmq-1=rabbitmq-1 rabbitmq-2=rabbitmq-2 rabbitmq-3=rabbitmq-3 \
        galera-1=galera-1,db-proxy galera-2=galera-2,db-proxy galera-3=galera-3,db-proxy \
        order_generator=generator order_processor=processor \
        order_gateway=gateway,localhost,127.0.0.1 order_migrate=migrate
fi
days=${TLS_DAYS:-825}

mkdir -p "$dir/ca"
chmod 700 "$dir"
if [ ! -s "$dir/ca/ca.pem" ] || [ ! -s "$dir/ca/ca.key" ]; then
    # RSA 2048 keys: what every peer here (Erlang, MariaDB, Galera, socat,
    # Python) has long agreed on; Erlang/OTP patch releases have disagreed
    # on ECDSA signature schemes with each other (erlang/otp#8918), which a
    # rolling upgrade of the brokers would meet.
    openssl req -x509 -new -newkey rsa:2048 -nodes \
        -days "$days" -subj "/CN=order-pipeline CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca/ca.key" -out "$dir/ca/ca.pem" 2>/dev/null
    chmod 600 "$dir/ca/ca.key"
fi

for identity in "$@"; do
    name=${identity%%=*}
    names=${identity#*=}
    [ "$name" != "$identity" ] && [ -n "$names" ] || {
        echo "make-certs.sh: '$identity' is not NAME=DNS[,DNS...]" >&2
        exit 2
    }
    san=""
    IFS=, read -ra hosts <<<"$names"
    for host in "${hosts[@]}"; do
        if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then
            san="$san,IP:$host"
        else
            san="$san,DNS:$host"
        fi
    done
    out="$dir/$name"
    mkdir -p "$out"
    openssl req -new -newkey rsa:2048 -nodes \
        -subj "/CN=$name" -keyout "$out/key.pem" -out "$out/cert.csr" 2>/dev/null
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectAltName=${san#,}" >"$out/cert.ext"
    openssl x509 -req -in "$out/cert.csr" -CA "$dir/ca/ca.pem" -CAkey "$dir/ca/ca.key" \
        -CAcreateserial -days "$days" -extfile "$out/cert.ext" -out "$out/cert.pem" 2>/dev/null
    rm -f "$out/cert.csr" "$out/cert.ext"
    cp "$dir/ca/ca.pem" "$out/ca.pem"
    chmod 644 "$out/ca.pem" "$out/cert.pem" "$out/key.pem"
    echo "$out: cert.pem ($name; ${san#,}), key.pem, ca.pem"
done

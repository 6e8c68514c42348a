#!/usr/bin/env bash
# Prints deploy/k8s rendered as `kubectl apply -k` would apply it, from a
# scratch copy with each secrets/*.env made from its example and a new set
# of certificates from deploy/tls/make-certs.sh: what `make checkov` scans
# and tests/unit/test_k8s.py checks. Your own secrets/ and tls/ are not read.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/k8s"
cp "$here"/*.yaml "$scratch/k8s/"
mkdir "$scratch/k8s/secrets"
for example in "$here"/secrets/*.env.example; do
    name=$(basename "$example" .example)
    cp "$example" "$scratch/k8s/secrets/$name"
done
"$here/../tls/make-certs.sh" "$scratch/k8s/tls" \
    order_generator=generator order_processor=processor \
    order_gateway=gateway,gateway.order-pipeline.svc order_migrate=migrate >/dev/null
"${KUBECTL:-kubectl}" kustomize "$scratch/k8s"

#!/usr/bin/env bash
# The Debian bookworm base image the compose check builds on, since no image
# registry is reachable here: debootstrap from the mirror apt already uses,
# imported into podman as localhost/debian:bookworm-slim. Reused when it
# exists (delete it with `podman rmi` to make it again).
set -euo pipefail
IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-slim}

if podman image exists "$IMAGE"; then
    echo "base image $IMAGE: reused"
    exit 0
fi

# The first Debian mirror apt is configured with, in either file format
# (deb822 "URIs:" or one-line "deb URL suite ...").
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }
           $1 == "deb" && $2 !~ /security/ && $2 !~ /^\[/ { print $2; exit }' || true)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base image $IMAGE: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# apt in the image should find the same mirror, and pip there should trust
# the certificate authorities this machine trusts (a proxy in between may
# sign PyPI's certificate with its own).
echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
# (Outside /etc/ssl/certs, which Debian's ca-certificates package rewrites.)
mkdir -p "$root/usr/local/share/build-host"
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/build-host/ca-certificates.crt"
printf '[global]\ncert = /usr/local/share/build-host/ca-certificates.crt\n' >"$root/etc/pip.conf"
tar -C "$root" -c . | podman import --quiet - "$IMAGE" >/dev/null
echo "base image $IMAGE: imported"

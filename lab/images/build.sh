#!/usr/bin/env bash
# Build the lab images smartmx-lab/debian:<suite> without needing a registry.
#
#   lab/images/build.sh [bookworm] [trixie]      (default: bookworm trixie)
#
# 1. smartmx-lab/base:<suite>: `docker pull debian:<suite>` when a registry
#    answers, otherwise `debootstrap --variant=minbase` + `docker import`.
# 2. smartmx-lab/debian:<suite>: the Dockerfile beside this script on top.
# Each image carries a label with the hash of its recipe; an image whose label
# matches is kept, so a second run is a no-op. FORCE=1 rebuilds anyway.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

recipe_hash() {
    cat "$here/build.sh" "$here/Dockerfile" | sha256sum | cut -c1-16
}

image_label() {  # image label-name -> value or empty
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

log() { printf '%s [image] %s\n' "$(date +%T)" "$*" >&2; }

build_base() {  # suite
    local suite=$1 ref="smartmx-lab/base:$1" want
    want="$(recipe_hash)"
    if [ "${FORCE:-0}" != 1 ] && [ "$(image_label "$ref" smartmx.recipe)" = "$want" ]; then
        log "$ref is current"
        return
    fi
    if timeout 60 docker pull -q "debian:$suite" >/dev/null 2>&1; then
        log "pulled debian:$suite"
        printf 'FROM debian:%s\nLABEL smartmx.recipe=%s smartmx.base=pulled\n' "$suite" "$want" \
            | docker build -q -t "$ref" - >/dev/null
        return
    fi
    command -v debootstrap >/dev/null || { log "no registry and no debootstrap: apt-get install debootstrap"; exit 1; }
    local root
    root=$(mktemp -d /var/tmp/smartmx-debootstrap.XXXXXX)
    trap 'rm -rf "$root"' RETURN
    log "debootstrap $suite from $mirror (no registry answered)"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" \
        > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
    rm -f "$root.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    log "docker import $ref"
    tar -C "$root" -c . | docker import \
        -c "LABEL smartmx.recipe=$want smartmx.base=debootstrap" \
        -c 'CMD ["/bin/bash"]' - "$ref" >/dev/null
}

build_lab() {  # suite
    local suite=$1 ref="smartmx-lab/debian:$1" want
    want="$(recipe_hash)"
    if [ "${FORCE:-0}" != 1 ] && [ "$(image_label "$ref" smartmx.recipe)" = "$want" ]; then
        log "$ref is current"
        return
    fi
    log "docker build $ref"
    docker build -q --build-arg "SUITE=$suite" --label "smartmx.recipe=$want" \
        -t "$ref" "$here" >/dev/null
}

for suite in "${suites[@]}"; do
    start=$(date +%s)
    build_base "$suite"
    build_lab "$suite"
    log "$suite ready in $(( $(date +%s) - start ))s"
done

#!/usr/bin/env bash
# Time the lab: a cold and a warm build of the lab images, and one run of
# the Molecule scenario `default` (create, prepare, converge, idempotence,
# verify, destroy). Writes bench/results/lab-<UTC time>.json and prints it.
#
#   bench/lab_timings.sh                 # all three
#   bench/lab_timings.sh images          # image builds only
#   bench/lab_timings.sh default         # the scenario only
#
# "Cold" rebuilds both images from nothing with FORCE=1: a fresh debootstrap
# (or pull) of the base and a Dockerfile build on a base Docker has never seen,
# so no layer cache applies. "Warm" is the next, unchanged run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-all}
out="bench/results/lab-$(date -u +%Y%m%dT%H%M%SZ).json"
mkdir -p bench/results

seconds() {  # seconds COMMAND... -> elapsed seconds on stdout, output to stderr
    local start
    start=$(date +%s.%N)
    "$@" >&2
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }' 
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A result
if [ "$what" = all ] || [ "$what" = images ]; then
    result[image_cold_s]=$(FORCE=1 seconds lab/images/build.sh bookworm trixie)
    result[image_warm_s]=$(seconds lab/images/build.sh bookworm trixie)
fi
if [ "$what" = all ] || [ "$what" = default ]; then
    make --no-print-directory collection
    result[molecule_default_s]=$(seconds molecule test -s default)
fi

{
    printf '{\n  "date_utc": "%s",\n  "host": "%s",\n  "cpus": %s,\n  "docker": "%s",\n  "load_before": "%s"' \
        "$(date -u +%FT%TZ)" "$(uname -srm)" "$(nproc)" \
        "$(docker version --format '{{.Server.Version}}')" "$load_before"
    for key in "${!result[@]}"; do
        printf ',\n  "%s": %s' "$key" "${result[$key]}"
    done
    printf '\n}\n'
} > "$out"
cat "$out"

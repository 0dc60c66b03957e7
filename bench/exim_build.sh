#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Measures the exim_build role on this machine with the molecule scenario
# exim_build (a fresh lab container each time):
#   cold  - converge on a fresh host with an empty controller cache
#           (packaging tools, build-deps, apt-get source, dpkg-buildpackage)
#   warm  - converge on a fresh host with the cache filled by the cold run
#   test  - the whole `molecule test -s exim_build` with the cache filled
# Usage: bench/exim_build.sh            (logs in bench/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=bench/results
mkdir -p "$results"
log="$results/exim_build-$stamp.log"
summary="$results/exim_build-$stamp.txt"
SMARTMX_CACHE_DIR=$(mktemp -d /tmp/smartmx-exim-bench.XXXXXX)
# A container name of its own, so a concurrent `molecule test --all` from
# another checkout cannot destroy the host under measurement.
EXIM_BUILD_INSTANCE=smartmx-exim-bench-$$
export SMARTMX_CACHE_DIR EXIM_BUILD_INSTANCE

timed() {  # timed NAME CMD... : run CMD, print and record its wall time
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >>"$log" 2>&1
  end=$(date +%s.%N)
  awk -v n="$name" -v s="$start" -v e="$end" \
    'BEGIN {printf "%-6s %7.1f s\n", n, e - s}' | tee -a "$summary"
}

{
  echo "exim_build benchmark $stamp on $(hostname) ($(nproc) cores)"
  echo "cache: $SMARTMX_CACHE_DIR, instance: $EXIM_BUILD_INSTANCE"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$summary"

molecule destroy -s exim_build >>"$log" 2>&1
molecule create -s exim_build >>"$log" 2>&1
timed cold molecule converge -s exim_build
molecule destroy -s exim_build >>"$log" 2>&1
molecule create -s exim_build >>"$log" 2>&1
timed warm molecule converge -s exim_build
molecule destroy -s exim_build >>"$log" 2>&1
timed test molecule test -s exim_build
grep -h "built on" "$log" | sed 's/^[^a-z]*//; s/"//g' | tee -a "$summary" || true
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
rm -rf "$SMARTMX_CACHE_DIR"
echo "summary: $summary"

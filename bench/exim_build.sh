#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Measures the exim_build role on this machine with the molecule scenario
# exim_build (a fresh lab container each time):
#   cold  - converge with an empty controller cache: the scenario's builder
#           installs the packaging tools and build-deps, fetches the source and
#           runs dpkg-buildpackage; its two targets install the packages
#   warm  - converge on one fresh target with the cache filled by the cold run
#   test  - the whole `molecule test -s exim_build` with the cache filled
# Usage: bench/exim_build.sh            (logs in bench/results/)
#        bench/exim_build.sh CACHE_DIR  (skip cold: reuse a cache that a cold
#                                        run of this script filled)
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh" exim_build
json="$results/exim_build-$stamp.json"
reuse=${1:-}
SMARTMX_CACHE_DIR=${reuse:-$(mktemp -d /tmp/smartmx-exim-bench.XXXXXX)}
# A container name and a molecule state directory of its own, so a concurrent
# molecule run of the same scenario cannot touch the host under measurement.
EXIM_BUILD_INSTANCE=smartmx-exim-bench-$$
MOLECULE_EPHEMERAL_DIRECTORY=$(mktemp -d /tmp/smartmx-exim-bench-state.XXXXXX)
export SMARTMX_CACHE_DIR EXIM_BUILD_INSTANCE MOLECULE_EPHEMERAL_DIRECTORY

{
  echo "exim_build benchmark $stamp on $(hostname) ($(nproc) cores)"
  echo "cache: $SMARTMX_CACHE_DIR, instance: $EXIM_BUILD_INSTANCE"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$summary"

if [ -z "$reuse" ]; then
  molecule destroy -s exim_build >>"$log" 2>&1
  molecule create -s exim_build >>"$log" 2>&1
  timed cold molecule converge -s exim_build
  molecule destroy -s exim_build >>"$log" 2>&1
fi
molecule create -s exim_build >>"$log" 2>&1
# One fresh target (the scenario's first), the cache filled: no builder involved.
# The version the cold run built is passed in, so the converge is the role alone
# (the scenario's own pinning play would refresh the apt lists before the role).
pin=$(awk '/^source_version:/ {print $2}' "$SMARTMX_CACHE_DIR"/debs/*/BUILDINFO | sort -u | tail -1)
timed warm molecule converge -s exim_build -- --limit "$EXIM_BUILD_INSTANCE" -e "exim_build_version=$pin"
molecule destroy -s exim_build >>"$log" 2>&1
timed test molecule test -s exim_build
# the role's "built on ... in H:MM:SS" line, unwrapped from molecule's console
grep -h -A1 "built on" "$log" | sed 's/\x1b\[[0-9;]*m//g; s/^[^a-z0-9]*//; s/"//g' |
  paste -sd' ' | tee -a "$summary" || true
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
awk -v stamp="$stamp" '
  /^(cold|warm|test) / {t[$1] = $2}
  /^load average at start/ {ls = $5 " " $6 " " $7}
  /^load average at end/ {le = $5 " " $6 " " $7}
  /built on/ {b = $NF}
  END {printf "{\"date\": \"%s\", \"cold_s\": %s, \"warm_s\": %s, \"test_s\": %s, " \
       "\"build_delta\": \"%s\", \"load_start\": \"%s\", \"load_end\": \"%s\"}\n",
       stamp, (t["cold"] == "" ? "null" : t["cold"]), t["warm"], t["test"], b, ls, le}' "$summary" >"$json"
[ -n "$reuse" ] || rm -rf "$SMARTMX_CACHE_DIR"
rm -rf "$MOLECULE_EPHEMERAL_DIRECTORY"
echo "summary: $summary, $json"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Time from an edit of the alias file on the primary to the new generation
# active on the secondary (its `current` switched), through the runner's path
# unit (role alias_sync_runner). Both containers read the host's clock.
#   bench/sync_edit_to_active.sh [PRIMARY] [SECONDARY] [RUNS]
# Defaults: the Molecule scenario `sync` (smartmx-sync-mx1, smartmx-sync-mx2), 5 runs.
# Environment: ALIAS_PATH (/com/mailer/aliases), BASE_DIR (/var/lib/smartmx/aliases).
# Prints one line per edit, then one JSON line: edit_to_active_median_s, samples_s, runs.
set -euo pipefail
primary=${1:-smartmx-sync-mx1}
secondary=${2:-smartmx-sync-mx2}
runs=${3:-5}
alias_path=${ALIAS_PATH:-/com/mailer/aliases}
base=${BASE_DIR:-/var/lib/smartmx/aliases}
unit=smartmx-alias-sync
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

idle() {  # until no sync runs on the primary
    local state
    for _ in $(seq 600); do
        state=$(docker exec "$primary" systemctl is-active "$unit.service" || true)
        [ "$state" != activating ] && return 0
        sleep 0.2
    done
    echo "a sync is still running on $primary" >&2
    return 1
}

samples=()
for run in $(seq "$runs"); do
    idle
    before=$(docker exec "$secondary" readlink "$base/current")
    # The watcher starts first; it prints the time it saw current move.
    docker exec "$secondary" timeout 120 sh -c \
        "while [ \"\$(readlink '$base/current')\" = '$before' ]; do sleep 0.02; done; date +%s.%N" \
        >"$tmp/seen" &
    watcher=$!
    edited=$(docker exec "$primary" sh -c \
        "date +%s.%N; printf 'bench-edit-%s-%s: nemo@offsite.test\n' $run \$\$ >> '$alias_path'")
    wait "$watcher"
    seen=$(cat "$tmp/seen")
    sample=$(awk -v a="$edited" -v b="$seen" 'BEGIN {printf "%.2f", b - a}')
    samples+=("$sample")
    echo "edit $run: ${sample} s ($before -> $(docker exec "$secondary" readlink "$base/current"))"
done

median=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
printf '{"edit_to_active_median_s": %s, "samples_s": [%s], "runs": %d}\n' \
    "$median" "$(IFS=,; echo "${samples[*]}")" "$runs"

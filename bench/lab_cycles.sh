#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Run `make lab-down && make lab` N times in a row (default 10) and report how
# many succeeded and the median time of a run. Each run's output goes to
# bench/results/lab-cycles-STAMP.log; the figures to ...-STAMP.txt.
#
#   bench/lab_cycles.sh [N]
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh" lab-cycles
runs=${1:-10}
ok=0
times=()
for i in $(seq "$runs"); do
    make --no-print-directory lab-down >>"$log" 2>&1
    if t=$(timed "run$i" make --no-print-directory lab); then ok=$((ok + 1)); fi
    times+=("$(awk '{print $2}' <<<"$t")")
done
make --no-print-directory lab-down >>"$log" 2>&1
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
{
    echo "date_utc=$(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "runs=$runs succeeded=$ok median_s=$median"
} | tee -a "$summary"
printf '{"runs": %s, "succeeded": %s, "median_s": %s}\n' "$runs" "$ok" "$median"
[ "$ok" = "$runs" ]

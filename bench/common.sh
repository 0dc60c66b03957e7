# shellcheck shell=bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Sourced by the shell benchmarks: runs from the checkout with its venv, and
# sets stamp, results, log and summary (bench/results/NAME-STAMP.{log,txt}).
# Usage: . "$(dirname "$0")/common.sh" NAME
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=bench/results
mkdir -p "$results"
log="$results/$1-$stamp.log"
summary="$results/$1-$stamp.txt"

timed() {  # timed NAME CMD... : run CMD (output to the log), print and record its wall time
  local name=$1 start end rc=0
  shift
  start=$(date +%s.%N)
  "$@" >>"$log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  awk -v n="$name" -v s="$start" -v e="$end" -v rc="$rc" \
    'BEGIN {printf "%-8s %7.1f s%s\n", n, e - s, (rc == 0 ? "" : "  FAILED (" rc ")")}' | tee -a "$summary"
  return "$rc"
}

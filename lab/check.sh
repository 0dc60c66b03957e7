#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Prove the README's first command: from no lab, `make lab` succeeds; a second
# `make lab` on the running lab recreates no container and changes nothing;
# `make lab-down` leaves no lab container, volume or network behind.
#
#   lab/check.sh          (what `make lab-check` and `make test` run)
#
# Ends with "lab check: N passed, M failed" and exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit
name=smartmx-lab
logdir=${SMARTMX_LAB_LOGS:-/var/tmp/smartmx/lab-check}
mkdir -p "$logdir"
passed=0 failed=0

check() {  # check DESCRIPTION COMMAND...
    if "${@:2}"; then
        passed=$((passed + 1)); echo "ok: $1"
    else
        failed=$((failed + 1)); echo "FAILED: $1"
    fi
}
containers() {  # name, id and start time of every lab container, sorted
    docker ps -aq --filter "label=smartmx.lab=$name" | sort \
        | xargs -r docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}' | sort
}
run_lab() {  # run_lab LOG: make lab, output to LOG (and its tail on failure)
    local rc=0
    make --no-print-directory lab >"$1" 2>&1 || rc=$?
    [ "$rc" = 0 ] || tail -40 "$1"
    return "$rc"
}
all_recaps_unchanged() {  # every PLAY RECAP line of LOG says changed=0 failed=0
    ! grep -E '^[^ ]+ +: ok=' "$1" | grep -vE 'changed=0 .*failed=0 ' | grep .
}
volumes() {  # the volumes mounted in the lab containers
    docker ps -aq --filter "label=smartmx.lab=$name" \
        | xargs -r docker inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' \
        | tr ' ' '\n' | grep . | sort
}
nothing_left() {  # nothing_left VOLUME...: no lab container or network, none of these volumes
    local volume
    [ -z "$(docker ps -aq --filter "label=smartmx.lab=$name")" ] \
        && [ -z "$(docker network ls -q --filter "label=smartmx.lab=$name")" ] || return 1
    for volume in "$@"; do
        ! docker volume inspect "$volume" >/dev/null 2>&1 || { echo "volume $volume is left" >&2; return 1; }
    done
}

make --no-print-directory lab-down >/dev/null
start=$(date +%s)
check "make lab from no lab ($logdir/first.log)" run_lab "$logdir/first.log"
echo "make lab took $(( $(date +%s) - start )) s"
before=$(containers)
check "three lab containers run" test "$(echo "$before" | grep -c .)" = 3
mapfile -t lab_volumes < <(volumes)
check "each lab container keeps /usr, /etc, /var, /home and /com on volumes" test "${#lab_volumes[@]}" = 15
check "a second make lab succeeds ($logdir/second.log)" run_lab "$logdir/second.log"
check "the second make lab changed nothing (every recap changed=0)" all_recaps_unchanged "$logdir/second.log"
check "the second make lab recreated and restarted no container" test "$before" = "$(containers)"
check "make lab-down" make --no-print-directory lab-down
check "no lab container, volume or network is left" nothing_left "${lab_volumes[@]}"
echo "lab check: $passed passed, $failed failed"
[ "$failed" = 0 ]

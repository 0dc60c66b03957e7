#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Rehearses the security-update runbook of docs/exim_build.md on the hosts of
# the molecule scenario exim_build (a builder and a target), and times it:
#   running - the target runs the build of the exim4 the lab's mirror serves
#             (converge pinned as the scenario pins it); the role must report
#             whether Debian offers a newer exim4
#   update  - a "security update" appears: a local deb-src archive on the
#             builder and the target offers exim4 <newest>+rehearsal1, newer
#             than anything Debian offers (the same code, a new changelog
#             entry). The role runs unpinned and must report it, rebuild from
#             it on the builder, install it over the held packages and hold it.
# Checks the installed version, the hold and the recorded currency after each
# step. Usage: bench/exim_build_update.sh [CACHE_DIR]   (logs in bench/results/)
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh" exim_build_update
SMARTMX_CACHE_DIR=${1:-$(mktemp -d /tmp/smartmx-exim-update.XXXXXX)}
EXIM_BUILD_INSTANCE=smartmx-exim-update-$$
MOLECULE_EPHEMERAL_DIRECTORY=$(mktemp -d /tmp/smartmx-exim-update-state.XXXXXX)
export SMARTMX_CACHE_DIR EXIM_BUILD_INSTANCE MOLECULE_EPHEMERAL_DIRECTORY
target=$EXIM_BUILD_INSTANCE
builder=$EXIM_BUILD_INSTANCE-builder
repo=/srv/rehearsal

# (pipefail is on: grep reads all its input, never -q, so no writer dies of SIGPIPE)
say() { echo "$*" | tee -a "$summary"; }
fail() { say "FAILED: $*"; exit 1; }
cleanup() { molecule destroy -s exim_build >>"$log" 2>&1 || true; }
trap cleanup EXIT


on() { local host=$1; shift; docker exec "$host" bash -c "$*"; }
installed() { on "$target" "dpkg-query -W -f='\${Version} \${db:Status-Abbrev}' exim4-daemon-heavy"; }
fact() { on "$target" "cat /etc/ansible/facts.d/smartmx_exim_build.fact" | tr -d '\n '; }

say "exim_build update rehearsal $stamp on $(hostname) ($(nproc) cores), cache $SMARTMX_CACHE_DIR"
{
  molecule destroy -s exim_build
  molecule create -s exim_build
} >>"$log" 2>&1

# 1. the running build: converge as the scenario does (it pins what the mirror serves)
timed running molecule converge -s exim_build -- --limit "$target" || fail "converge (see $log)"
running=$(installed)
say "running: $running; recorded: $(fact)"
[ "${running#* }" = "hi " ] || [ "${running#* }" = "hi" ] || fail "not held: $running"
running=${running%% *}

# 2. publish a newer exim4 source in a local archive on the builder and the target
# (newer than the newest Debian offers, which the role recorded as "upstream";
# the scenario's verify step checks that figure against apt)
newest=$(fact | sed -n 's/.*"upstream":"\([^"]*\)".*/\1/p')
[ -n "$newest" ] || fail "no upstream version in the recorded currency: $(fact)"
update="$newest+rehearsal1"
base=${running%+smartmx*}
say "Debian offers at most exim4 $newest; publishing exim4 $update (the code of $base)"
on "$builder" "
  set -e
  apt-get update -q >/dev/null
  command -v dpkg-source >/dev/null || apt-get install -y -q dpkg-dev >/dev/null
  rm -rf $repo && mkdir -p $repo/work && cd $repo/work
  apt-get source -q --only-source exim4=$base >/dev/null 2>&1
  cd exim4-*/
  { printf 'exim4 (%s) bookworm-security; urgency=medium\n\n' '$update'
    printf '  * Rehearsal of a Debian security update (no code change).\n\n'
    printf ' -- smartmx.exim rehearsal <root@localhost>  %s\n\n' \"\$(date -R)\"
    cat debian/changelog; } > debian/changelog.new
  mv debian/changelog.new debian/changelog
  cd .. && dpkg-source -b exim4-*/ >/dev/null
  mv ./*.dsc ./*.debian.tar.* ./*.orig.tar.* $repo/ && cd $repo && rm -rf work
  dpkg-scansources . > Sources 2>/dev/null
  tar -C / -cf /tmp/rehearsal.tar ${repo#/}
" >>"$log" 2>&1 || fail "could not publish $update"
docker cp "$builder:/tmp/rehearsal.tar" "$results/rehearsal-$stamp.tar" >>"$log" 2>&1
docker cp "$results/rehearsal-$stamp.tar" "$target:/tmp/rehearsal.tar" >>"$log" 2>&1
rm -f "$results/rehearsal-$stamp.tar"
for host in "$builder" "$target"; do
  on "$host" "tar -C / -xf /tmp/rehearsal.tar &&
    echo 'deb-src [trusted=yes] file:$repo ./' > /etc/apt/sources.list.d/rehearsal.list" ||
    fail "could not add the archive on $host"
done

# 3. the role, unpinned: it must see the update, rebuild and install it
timed update molecule converge -s exim_build -- --limit "$target" -e exim_build_version= || fail "converge (see $log)"
now=$(installed)
say "after the update: $now; recorded: $(fact)"
[ "${now%% *}" = "$update+smartmx1" ] || fail "installed ${now%% *}, expected $update+smartmx1"
case "${now#* }" in hi*) ;; *) fail "not held after the update: $now" ;; esac
fact | grep '"update_available":false' >/dev/null || fail "still reported as outdated: $(fact)"
grep -q "built_on: $builder" "$SMARTMX_CACHE_DIR"/debs/*rehearsal1*/BUILDINFO ||
  fail "no build record of $update from $builder"
docker exec "$target" /usr/sbin/exim4 -bP routers 2>/dev/null | grep transport_pfr >/dev/null ||
  fail "the installed exim does not know transport_pfr"
say "OK: $update was reported, built on the builder, installed over $running and held"

# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/drift_check.yml against a deployed primary and two secondaries.

Three runs on the clean pair find nothing and change nothing (the third in
check mode). Then one drift at a time is induced on one host, as it happens on a
real site, and the run must name exactly that check on that host and nothing
else; the fix the report names is applied. The next run (the next drift's, or
the last clean one) proves the fix: it names only its own drift, so the check
fixed before is ok again on every host.

The tests run in file order and depend on each other (one pair, one history).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

PREFIX = "smartmx-drift"
MX1, MX2, MX3 = (f"{PREFIX}-mx{n}" for n in (1, 2, 3))
OUTSIDE = f"{PREFIX}-outside"
OUTSIDE_ADDRESS = "172.30.53.10"
BASE = "/var/lib/smartmx/aliases"
CONFIG = "/etc/exim4/exim4.conf"
ALIASES = "/com/mailer/aliases"
SYNC_LOCK = "/run/lock/smartmx-alias-sync.lock"
SECONDARY_CHECKS = {
    "data",
    "generation_intact",
    "freshness",
    "config",
    "daemon_config",
    "policy",
    "build",
    "routing",
}
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
RUNS = []  # (what, seconds) of every drift check run, printed at the end
ENV = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
PIN: list[str] = []  # the exim4 source version the patched build has (the lab's pin)


def sh(container: str, script: str, check: bool = True, timeout: int = 300) -> str:
    res = subprocess.run(
        ["docker", "exec", container, "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"{container}: {script!r} exited {res.returncode}: {res.stderr.strip()[-2000:]}")
    return res.stdout


def _inventory_args(overrides: dict | None) -> list[str]:
    args = ["-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    if overrides:
        path = Path(tempfile.mkdtemp(prefix="drift-")) / "overrides.yml"
        path.write_text(yaml.safe_dump({"all": {"hosts": overrides}}), encoding="utf-8")
        args += ["-i", str(path)]
    return args


def _lag_versions() -> list[str]:
    """Debian versions newer than the build that apt offers at the start (no source for them in the lab)."""
    out = sh(
        MX2,
        "inst=$(dpkg-query -W -f '${Version}' exim4-base); base=${inst%+smartmx1};"
        " apt-cache madison exim4-base | awk -F'|' '{gsub(/ /, \"\", $2); print $2}' | grep -v smartmx |"
        ' while read -r v; do if dpkg --compare-versions "$v" gt "$base"; then echo "$v"; fi; done',
    )
    return sorted(set(out.split()))


LAG: list[str] = []


def drift_check(
    what: str, overrides: dict | None = None, extra: list[str] | None = None
) -> tuple[int, dict, str]:
    """One run of the drift check from the controller: (rc, the JSON report, the output)."""
    report = Path(tempfile.mkdtemp(prefix="drift-")) / "report.json"
    cmd = [
        "ansible-playbook",
        *_inventory_args(overrides),
        str(PROJECT / "playbooks" / "drift_check.yml"),
        "-e",
        f"drift_check_report={report}",
        "-e",
        json.dumps({"smartmx_security_lag_allowed_versions": LAG}),
        *(extra or []),
    ]
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=ENV)
    RUNS.append((what, round(time.monotonic() - start, 1)))
    output = res.stdout + res.stderr
    assert report.is_file(), f"{what}: no report written (rc {res.returncode}):\n{output[-4000:]}"
    return res.returncode, json.loads(report.read_text(encoding="utf-8")), output


def drifted(report: dict) -> set[tuple[str, str]]:
    return {(d["host"], d["check"]) for d in report["drift"]}


def assert_clean(what: str, rc: int, report: dict, output: str) -> None:
    assert report["drift"] == [] and report["unchecked"] == [], (
        f"{what}: {report['summary']}\n{output[-3000:]}"
    )
    assert report["exit_code"] == 0 and rc == 0, f"{what}: rc {rc}\n{output[-3000:]}"


def assert_only(what: str, want: set[tuple[str, str]], rc: int, report: dict, output: str) -> None:
    assert drifted(report) == want, f"{what}: {report['summary']}"
    assert report["unchecked"] == [], f"{what}: {report['summary']}"
    assert report["exit_code"] == 2 and rc != 0, f"{what}: rc {rc}, exit_code {report['exit_code']}"
    for host, check in want:
        entry = report["hosts"][host]["checks"][check]
        assert entry["detail"] and entry["fix"], entry
        assert f"{host} {check}: " in output, f"{what}: the summary does not name {host} {check}"


def converge(overrides: dict | None = None, skip: str = "exim_build") -> None:
    """site.yml's secondaries part again (every secondary: each reads the primary's facts)."""
    playbook = PROJECT / "molecule" / "drift" / "converge.yml"  # the lab's exim pin, then site.yml
    cmd = ["ansible-playbook", *_inventory_args(overrides), str(playbook), "--tags", "mx_secondary"]
    cmd += ["--skip-tags", skip] if skip else []
    cmd += ["-e", f"exim_build_version={PIN[0]}"]  # known: no apt lists to refresh for it
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False, env=ENV)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def sync_now() -> None:
    """The fix the report names for the data: one sync on the runner (waits for it)."""
    sh(MX1, "systemctl start smartmx-alias-sync.service")


def recap_changed(output: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    }


@pytest.fixture(scope="module", autouse=True)
def _lag():
    LAG[:] = _lag_versions()
    PIN[:] = [sh(MX2, "dpkg-query -W -f '${Version}' exim4-base").strip().removesuffix("+smartmx1")]
    yield
    print("\ndrift check runs (seconds):", ", ".join(f"{what} {s}" for what, s in RUNS))


def test_three_clean_runs_report_no_drift_and_change_nothing():
    for n in range(3):
        # The third in check mode with diff: the check is the same, and safe, there.
        extra = ["--check", "--diff"] if n == 2 else []
        rc, report, output = drift_check(f"clean {n + 1}", extra=extra)
        assert_clean(f"clean run {n + 1}", rc, report, output)
        assert set(report["hosts"]) == {MX1, MX2, MX3}
        for mx in (MX2, MX3):
            checks = report["hosts"][mx]["checks"]
            assert set(checks) == SECONDARY_CHECKS
            assert all(v["status"] == "ok" for v in checks.values()), checks
            assert report["hosts"][mx]["seen"]["routed"] >= 10
        assert report["hosts"][MX1]["checks"]["schedule"]["status"] == "ok"
        assert report["hosts"][MX1]["checks"]["aliases"]["status"] == "ok"
        changed = recap_changed(output)
        assert all(changed[h] == 0 for h in (MX1, MX2, MX3)), changed


def test_alias_edited_on_the_primary_without_a_sync():
    # A sync that has not run yet: the runner's lock is held, so the path unit's sync waits.
    sh(MX1, f"nohup flock -o {SYNC_LOCK} sleep 600 >/dev/null 2>&1 & echo $! > /run/drift-lock.pid")
    try:
        sh(MX1, f"echo 'drift-new: drift-new@offsite.test' >> {ALIASES}")
        rc, report, output = drift_check("alias edited, no sync")
        assert_only("alias edited, no sync", {(MX2, "data"), (MX3, "data")}, rc, report, output)
        assert report["hosts"][MX2]["checks"]["routing"]["status"] == "skipped"
    finally:
        sh(MX1, "kill $(cat /run/drift-lock.pid)")
    sync_now()


def test_a_generation_file_edited_on_a_secondary():
    before = sh(MX2, f"readlink {BASE}/current").strip()
    sh(MX2, f"echo 'oops: nemo@offsite.test' >> {BASE}/current/aliases")
    rc, report, output = drift_check("generation file edited")
    assert_only("generation file edited", {(MX2, "generation_intact")}, rc, report, output)
    check = report["hosts"][MX2]["checks"]["generation_intact"]
    assert "aliases" in check["detail"] and "run the sync" in check["fix"], check
    # The fix the report names: a sync of the same data writes a new, intact generation.
    sync_now()
    assert sh(MX2, f"readlink {BASE}/current").strip() != before
    assert "oops:" not in sh(MX2, f"cat {BASE}/current/aliases")


def test_current_pointed_at_an_old_generation():
    current = sh(MX3, f"readlink {BASE}/current").strip()
    old = [g for g in sh(MX3, f"ls {BASE}/generations").split() if not current.endswith(g)]
    assert old, "no older generation on mx3"
    sh(MX3, f"ln -sfn generations/{old[0]} {BASE}/current.new && mv -T {BASE}/current.new {BASE}/current")
    rc, report, output = drift_check("current at an old generation")
    assert_only("current at an old generation", {(MX3, "data")}, rc, report, output)
    sync_now()


def test_heartbeat_aged():
    sh(MX2, f"touch -d '-3 hours' {BASE}/heartbeat")
    rc, report, output = drift_check("heartbeat aged")
    assert_only("heartbeat aged", {(MX2, "freshness")}, rc, report, output)
    sync_now()


def test_sync_timer_disabled():
    sh(MX1, "systemctl disable --now smartmx-alias-sync.timer")
    rc, report, output = drift_check("sync timer disabled")
    assert_only("sync timer disabled", {(MX1, "schedule")}, rc, report, output)
    assert "smartmx-alias-sync.timer" in report["hosts"][MX1]["checks"]["schedule"]["detail"]
    sh(MX1, "systemctl enable --now smartmx-alias-sync.timer")


def test_exim_configuration_edited_and_reloaded():
    sh(MX2, f"echo '# edited by hand' >> {CONFIG} && systemctl restart exim4")
    rc, report, output = drift_check("configuration edited")
    assert_only("configuration edited", {(MX2, "config")}, rc, report, output)


SOFTER = {
    MX3: {"smartmx_policy": {"message_size_limit": "100M", "rate_limit": {"rate": 20000, "period": "1m"}}}
}


def test_policy_changed_on_one_mx_only():
    # One converge fixes mx2's configuration (the fix the last run named) and gives mx3
    # a policy of its own.
    converge(SOFTER)
    rc, report, output = drift_check("policy on one MX", SOFTER)
    assert_only("policy on one MX", {(MX3, "policy")}, rc, report, output)
    assert report["hosts"][MX2]["checks"]["config"]["status"] == "ok"


# The secondary cannot reach the off-site host (a wrong ignore_target_hosts): the model
# routes rms@gnu.test to rms@offsite.test, exim finds it unroutable.
BLIND = {MX2: {"mx_secondary_ignore_target_hosts": ["0.0.0.0", "127.0.0.0/8", OUTSIDE_ADDRESS]}}


def test_routing_disagreement():
    converge(BLIND)  # and mx3's policy is the site's again
    rc, report, output = drift_check("routing disagreement", BLIND)
    assert_only("routing disagreement", {(MX2, "routing")}, rc, report, output)
    assert "offsite.test" in report["hosts"][MX2]["checks"]["routing"]["detail"]
    assert report["hosts"][MX3]["checks"]["policy"]["status"] == "ok"
    converge()


def test_exim_configuration_edited_but_not_reloaded():
    # The daemon runs an edited configuration; the file on disk is the rendered one again.
    sh(MX3, f"cp {CONFIG} /run/drift-conf && echo '# edited by hand' >> {CONFIG} && systemctl restart exim4")
    time.sleep(2.5)  # start times are known to a second
    sh(MX3, f"cat /run/drift-conf > {CONFIG}")
    rc, report, output = drift_check("configuration not reloaded")
    assert_only("configuration not reloaded", {(MX3, "daemon_config")}, rc, report, output)
    assert report["hosts"][MX2]["checks"]["routing"]["status"] == "ok"
    sh(MX3, "systemctl restart exim4")


def test_stock_exim_installed():
    sh(
        MX2,
        "set -e; v=$(dpkg-query -W -f '${Version}' exim4-base); v=${v%+smartmx1};"
        " printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d;"
        " apt-mark unhold exim4-base exim4-config exim4-daemon-light >/dev/null;"
        " DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades"
        " -o Dpkg::Options::=--force-confold"
        ' "exim4-base=$v" "exim4-config=$v" "exim4-daemon-light=$v" >/dev/null;'
        " rm -f /usr/sbin/policy-rc.d",
    )
    rc, report, output = drift_check("stock exim")
    assert_only("stock exim", {(MX2, "build")}, rc, report, output)
    assert "not the local build" in report["hosts"][MX2]["checks"]["build"]["detail"]
    assert report["hosts"][MX2]["checks"]["routing"]["status"] == "skipped"
    assert report["hosts"][MX3]["checks"]["daemon_config"]["status"] == "ok"
    converge(skip="")


NEWER = "4.96-15+deb12u99"


def test_older_exim_than_apt_offers():
    # A security update appears in an archive the secondary uses.
    sh(
        MX3,
        "set -e; mkdir -p /srv/drift-repo; arch=$(dpkg --print-architecture);"
        f" printf 'Package: exim4-base\\nVersion: {NEWER}\\nArchitecture: %s\\nMaintainer: lab\\n"
        f"Filename: ./exim4-base_{NEWER}_%s.deb\\nSize: 1\\nDescription: a newer exim4\\n\\n'"
        ' "$arch" "$arch"'
        " > /srv/drift-repo/Packages;"
        " echo 'deb [trusted=yes] file:/srv/drift-repo ./' > /etc/apt/sources.list.d/drift.list;"
        " apt-get update -q -o Dir::Etc::sourcelist=sources.list.d/drift.list -o Dir::Etc::sourceparts=-"
        " -o APT::Get::List-Cleanup=0 >/dev/null",
    )
    rc, report, output = drift_check("older exim")
    assert_only("older exim", {(MX3, "build")}, rc, report, output)
    assert NEWER in report["hosts"][MX3]["checks"]["build"]["detail"]
    sh(MX3, "rm -f /etc/apt/sources.list.d/drift.list /var/lib/apt/lists/_srv_drift-repo_._Packages")


def test_clean_again_after_every_fix():
    rc, report, output = drift_check("clean after the fixes")
    assert_clean("after the fixes", rc, report, output)


def test_the_runner_runs_the_check_on_its_timer():
    """The scheduled check on the runner (mx1): same report, exit status 0; 2 when drifted."""
    sh(MX1, "systemctl start smartmx-drift-check.service")
    report = json.loads(sh(MX1, "cat /var/lib/smartmx/runner/drift-report.json"))
    assert report["exit_code"] == 0 and report["drift"] == [], report["summary"]
    sh(MX2, f"touch -d '-3 hours' {BASE}/heartbeat")
    status = subprocess.run(
        ["docker", "exec", MX1, "/usr/local/sbin/smartmx-drift-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 2, status.stdout[-3000:]
    report = json.loads(sh(MX1, "cat /var/lib/smartmx/runner/drift-report.json"))
    assert drifted(report) == {(MX2, "freshness")}, report["summary"]
    sync_now()
    assert sh(MX1, "systemctl is-active smartmx-drift-check.timer").strip() == "active"


def test_a_secondary_that_cannot_be_reached_is_not_checked():
    subprocess.run(["docker", "stop", MX3], capture_output=True, check=True, timeout=120)
    try:
        rc, report, output = drift_check("mx3 stopped")
        assert report["unchecked"] == [MX3] and report["exit_code"] == 4 and rc != 0, output[-3000:]
        assert drifted(report) == set(), report["summary"]
    finally:
        subprocess.run(["docker", "start", MX3], capture_output=True, check=True, timeout=120)

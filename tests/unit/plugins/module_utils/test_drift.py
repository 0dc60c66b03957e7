# SPDX-License-Identifier: GPL-3.0-or-later
"""The drift report: every check ok, then each drift induced alone; the routing model; Debian versions."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen
from ansible_collections.smartmx.exim.plugins.module_utils import _debversion as dv
from ansible_collections.smartmx.exim.plugins.module_utils import _drift as drift
from ansible_collections.smartmx.exim.plugins.module_utils import _mx_probe as probe
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases, secondary_routes

FIXTURES = Path(__file__).parents[1] / "modules" / "fixtures" / "mx_probe"
NOW = 1796173300.0
FILES = {
    "aliases": "a" * 64,
    "include/com/mailer/include/staff": "b" * 64,
    "rcpt": "c" * 64,
    "punt": "d" * 64,
}
# The lab's alias data (as on smartmx-lab-mx2 when bt_patch.stdout was captured).
LAB_ALIASES = """\
postmaster: root
root: adb
rms: rms@offsite.test
"with space": nemo@offsite.test
staff: :include:/com/mailer/include/staff
bug-hurd: hurd-dev@offsite.test, /com/archive/bug-hurd
trolls: adb, nemo@offsite.test, trolls-archive
trolls-archive: /com/archive/trolls
info-gnu: "|/usr/local/bin/lab-list info-gnu"
gnu-all: info-gnu, staff
gone: :fail: moved away, see www.gnu.test
fwd1: fwd1@offsite.test
"""
LAB_INCLUDES = {"/com/mailer/include/staff": "alice@offsite.test\nbob@offsite.test\nzarkon\n"}
LAB_USERS = {"adb": {"procmail": True, "forward": False}, "zarkon": {"procmail": False, "forward": False}}
BT = ["rms@gnu.test", "trolls@gnu.test", "info-gnu@gnu.test", "nosuch@gnu.test", "gone@gnu.test",
      "staff@gnu.test", "zarkon@gnu.test"]  # fmt: skip


def lab_table(strategy="patch"):
    return secondary_routes(
        parse_aliases(LAB_ALIASES), domains=["gnu.test"], includes=LAB_INCLUDES, users=LAB_USERS,
        pfr_strategy=strategy,
    )  # fmt: skip


def good_probe():
    files = {rel: {"sha256": sha, "size": 1} for rel, sha in FILES.items()}
    digest = gen.files_digest(files)
    return {
        "changed": False,
        "time": NOW,
        "generation": {
            "current": "20261202T005505Z-" + digest[:12],
            "files_digest": digest,
            "manifest": {"files": files},
            "intact": True,
            "mismatched": [],
            "missing": [],
            "extra": [],
            "error": None,
        },
        "heartbeat": {"exists": True, "mtime": NOW - 60, "content": {}, "error": None},
        "exim": {
            "installed_version": "4.96-15+deb12u11+smartmx1",
            "local_build": True,
            "local_suffix": "+smartmx1",
            "apt_newest": "4.96-15+deb12u11",
            "errors": [],
        },
        "config": {
            "path": "/etc/exim4/exim4.conf",
            "sha256": "e" * 64,
            "mtime": NOW - 600,
            "daemons": [{"pid": 812, "start": NOW - 500}],
            "daemon_count": 1,
            "daemon_pid": 812,
            "daemon_older_than_config": False,
        },
        "units": {
            "exim4.service": {"LoadState": "loaded", "ActiveState": "active", "Result": "success"},
        },
        "routing": probe.parse_bt((FIXTURES / "bt_patch.stdout").read_text(), BT),
    }


def good_input():
    table = lab_table()
    return {
        "expected": {
            "files": dict(FILES),
            "config_sha256": {"mx2": "e" * 64},
            "policy_sha256": {"mx1": "f" * 64, "mx2": "f" * 64},
            "routing": {a: drift.prediction(table, a) for a in BT},
        },
        "probes": {"mx2": good_probe()},
        "now": NOW,
    }


def report(data, **options):
    options.setdefault("primary", "mx1")
    return drift.drift_report(data, **options)


def test_all_checks_ok():
    got = report(good_input())
    checks = got["hosts"]["mx2"]["checks"]
    assert list(checks) == list(drift.CHECKS)
    bad = {k: v for k, v in checks.items() if not v["ok"]}
    assert bad == {}
    assert got["drift"] == [] and got["unchecked"] == []
    assert got["summary"].startswith("no drift")


def _set(path, value):
    def apply(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return apply


def _del(path):
    def apply(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return apply


P = ("probes", "mx2")
INDUCED = [
    ("data", _set(("expected", "files", "rcpt"), "0" * 64)),
    ("data", _set(("expected", "files", "users"), "1" * 64)),
    ("generation_intact", _set((*P, "generation", "intact"), False)),
    ("freshness", _set((*P, "heartbeat", "mtime"), NOW - 901)),
    ("freshness", _set((*P, "heartbeat"), {"exists": False, "mtime": None, "error": "missing"})),
    ("schedule", _set((*P, "units", "smartmx-alias-sync.timer"),
                      {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "enabled"})),
    ("schedule", _set((*P, "units", "smartmx-alias-sync.path"),
                      {"LoadState": "loaded", "ActiveState": "failed"})),
    ("schedule", _set((*P, "units", "exim4.service", "Result"), "exit-code")),
    ("schedule", _set((*P, "units", "gone.timer"), {"LoadState": "not-found"})),
    ("config", _set((*P, "config", "sha256"), "9" * 64)),
    ("daemon_config", _set((*P, "config", "daemon_older_than_config"), True)),
    ("daemon_config", _set((*P, "config", "daemon_count"), 2)),
    ("daemon_config", _set((*P, "config", "daemon_count"), 0)),
    ("policy", _set(("expected", "policy_sha256", "mx2"), "8" * 64)),
    ("build", _set((*P, "exim", "local_build"), False)),
    ("build", _set((*P, "exim", "apt_newest"), "4.96-15+deb12u12")),
    ("build", _set((*P, "exim", "installed_version"), None)),
    ("routing", _set((*P, "routing", "trolls@gnu.test"), {"result": "remote", "to": ["nemo@offsite.test"]})),
    ("routing", _set((*P, "routing", "staff@gnu.test", "primary"), [])),
    ("routing", _set((*P, "routing", "nosuch@gnu.test"), {"result": "defer", "message": "x"})),
    ("routing", _set((*P, "routing", "info-gnu@gnu.test"), {"result": "remote", "to": ["x@offsite.test"]})),
    ("routing", _del((*P, "routing", "rms@gnu.test"))),
]  # fmt: skip


@pytest.mark.parametrize(("check", "induce"), INDUCED)
def test_each_drift_names_exactly_its_check(check, induce):
    data = good_input()
    induce(data)
    got = report(data)
    assert [(d["host"], d["check"]) for d in got["drift"]] == [("mx2", check)]
    entry = got["hosts"]["mx2"]["checks"][check]
    assert entry["ok"] is False and entry["detail"] and entry["fix"]
    assert got["summary"].startswith("DRIFT")


def test_generation_intact_detail_names_files():
    data = good_input()
    g = data["probes"]["mx2"]["generation"]
    g.update(intact=False, mismatched=["rcpt"], missing=["punt"], extra=["stray"])
    detail = report(data)["hosts"]["mx2"]["checks"]["generation_intact"]["detail"]
    assert "mismatched: rcpt" in detail and "missing: punt" in detail and "extra: stray" in detail


def test_build_precompute_accepts_stock_and_allowed_lag():
    data = good_input()
    data["probes"]["mx2"]["exim"].update(local_build=False, installed_version="4.96-15+deb12u10",
                                         apt_newest="4.96-15+deb12u11")  # fmt: skip
    got = report(data, pfr_strategy="precompute")
    assert [d["check"] for d in got["drift"]] == ["build"]
    got = report(data, pfr_strategy="precompute", security_lag_allowed_versions=["4.96-15+deb12u11"])
    assert got["drift"] == []
    data["expected"]["pfr_strategy"] = {"mx2": "patch"}
    got = report(data, pfr_strategy="precompute", security_lag_allowed_versions=["4.96-15+deb12u11"])
    assert [d["check"] for d in got["drift"]] == ["build"]
    assert "not the local build" in got["drift"][0]["detail"]


def test_freshness_uses_the_hosts_clock_then_now():
    data = good_input()
    del data["probes"]["mx2"]["time"]
    data["now"] = NOW + 10000
    assert [d["check"] for d in report(data)["drift"]] == ["freshness"]


def test_schedule_from_the_runner_host():
    data = good_input()
    data["probes"]["mx1"] = {"units": {"smartmx-alias-sync.timer": {"LoadState": "loaded",
                             "ActiveState": "active", "UnitFileState": "disabled"}}}  # fmt: skip
    got = report(data, schedule_host="mx1")
    assert list(got["hosts"]) == ["mx1", "mx2"]
    assert got["hosts"]["mx1"]["role"] == ["runner"]
    assert "schedule" not in got["hosts"]["mx2"]["checks"]
    assert [(d["host"], d["check"]) for d in got["drift"]] == [("mx1", "schedule")]
    assert "mx1" in got["drift"][0]["detail"]
    assert got["exit_code"] == drift.EXIT_DRIFT


def test_runner_unreachable_is_unchecked_not_drift():
    data = good_input()
    data["probes"]["mx1"] = {"unreachable": True, "msg": "gone"}
    got = report(data, schedule_host="mx1")
    assert got["drift"] == [] and got["unchecked"] == ["mx1"]
    assert got["exit_code"] == drift.EXIT_UNCHECKED


@pytest.mark.parametrize("cause", ["data", "generation_intact", "config", "build"])
def test_routing_is_skipped_when_what_it_needs_drifted(cause):
    data = good_input()
    induce = dict(INDUCED)[cause] if cause != "data" else INDUCED[0][1]
    induce(data)
    # exim answers otherwise too, which is not a second finding
    data["probes"]["mx2"]["routing"]["rms@gnu.test"] = {"result": "refused", "message": "x"}
    got = report(data)
    assert [(d["host"], d["check"]) for d in got["drift"]] == [("mx2", cause)]
    routing = got["hosts"]["mx2"]["checks"]["routing"]
    assert routing["status"] == "skipped" and routing["ok"] is None and cause in routing["detail"]


def test_routing_is_judged_when_only_freshness_drifted():
    data = good_input()
    _set((*P, "heartbeat", "mtime"), NOW - 5000)(data)
    data["probes"]["mx2"]["routing"]["rms@gnu.test"] = {"result": "refused", "message": "x"}
    got = report(data)
    assert [d["check"] for d in got["drift"]] == ["freshness", "routing"]


def test_expected_files_are_the_manifest_alias_sync_writes():
    files = {"rcpt": "rms\n", "punt": "info-gnu\n"}
    generation = {
        "aliases": LAB_ALIASES,
        "includes": LAB_INCLUDES,
        "files": files,
        "alias_path": "/com/mailer/aliases",
    }
    got = drift.expected_files(generation)
    texts = gen.gather(LAB_ALIASES, LAB_INCLUDES, files, "/com/mailer/aliases")
    want = gen.manifest_files({rel: gen.check_text(text, shown) for rel, (text, shown) in texts.items()})
    assert got == want
    assert sorted(got) == ["aliases", "include/com/mailer/include/staff", "punt", "rcpt"]
    data = good_input()
    del data["expected"]["files"]
    data["expected"]["generation"] = generation
    probe_files = copy.deepcopy(got)
    g = data["probes"]["mx2"]["generation"]
    g.update(manifest={"files": probe_files}, files_digest=gen.files_digest(probe_files))
    assert report(data)["drift"] == []
    probe_files["rcpt"]["sha256"] = "0" * 64
    g.update(files_digest=gen.files_digest(probe_files))
    got = report(data)
    assert [d["check"] for d in got["drift"]] == ["data"] and "rcpt" in got["drift"][0]["detail"]


def test_expected_files_refuse_what_alias_sync_refuses():
    with pytest.raises(drift.DriftError, match="refused"):
        drift.expected_files({"aliases": "a: b\0c\n", "includes": {}, "files": {}})


def test_primary_aliases_check():
    data = good_input()
    warning = {"code": "dangling-target", "severity": "warning", "file": "/com/mailer/aliases", "line": 7,
               "message": "nobody"}  # fmt: skip
    data["expected"]["aliases"] = {"path": "/com/mailer/aliases", "refusals": [], "findings": [warning]}
    got = report(data)
    assert got["drift"] == []
    assert got["hosts"]["mx1"]["role"] == ["primary"]
    assert "/com/mailer/aliases:7" in got["hosts"]["mx1"]["checks"]["aliases"]["detail"]
    dangling = dict(warning, severity="error", line=8, code="dangling-target")
    data["expected"]["aliases"]["findings"].append(dangling)
    got = report(data)
    assert got["drift"] == [], "a target that bounces is the data as written, not drift"
    assert "(1 error(s))" in got["hosts"]["mx1"]["checks"]["aliases"]["detail"]
    error = dict(warning, severity="error", line=9, code="syntax-error")
    data["expected"]["aliases"]["findings"].append(error)
    got = report(data)
    assert [(d["host"], d["check"]) for d in got["drift"]] == [("mx1", "aliases")]
    assert "/com/mailer/aliases:9" in got["drift"][0]["detail"]
    data["expected"]["aliases"]["refusals"] = ["/com/mailer/aliases: line 3: NUL byte"]
    assert "line 3" in report(data)["drift"][0]["detail"]


def test_exit_codes():
    data = good_input()
    assert report(data)["exit_code"] == 0
    data["probes"]["mx3"] = {"unreachable": True}
    assert report(data)["exit_code"] == 4
    _set((*P, "config", "sha256"), "9" * 64)(data)
    assert report(data)["exit_code"] == 6
    del data["probes"]["mx3"]
    assert report(data)["exit_code"] == 2


def test_unchecked_hosts():
    data = good_input()
    data["probes"]["mx3"] = {"unreachable": True, "msg": "ssh: connect to host mx3 port 22: No route to host"}
    data["probes"]["mx4"] = {"failed": True, "msg": "boom"}
    got = report(data, secondaries=["mx2", "mx3", "mx4", "mx5"])
    assert got["unchecked"] == ["mx3", "mx4", "mx5"]
    assert got["hosts"]["mx3"]["checks"] == {}
    assert "No route" in got["hosts"]["mx3"]["unchecked"]
    assert got["drift"] == []
    assert "unchecked: mx3, mx4, mx5" in got["summary"]


def test_bad_input():
    with pytest.raises(drift.DriftError, match="unknown option"):
        report(good_input(), colour="red")
    with pytest.raises(drift.DriftError, match="pfr_strategy"):
        report(good_input(), pfr_strategy="maybe")
    with pytest.raises(drift.DriftError):
        drift.drift_report([])
    data = good_input()
    data["expected"]["files"]["rcpt"] = {"size": 3}
    with pytest.raises(drift.DriftError, match="sha256"):
        report(data)


def test_options_in_the_input():
    data = good_input()
    data["options"] = {"max_age": 30}
    assert [d["check"] for d in report(data)["drift"]] == ["freshness"]


# --------------------------------------------------------------------------- the model against real exim


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
def test_model_predicts_the_captured_exim_output(strategy):
    table = lab_table(strategy)
    got = probe.parse_bt((FIXTURES / "bt_patch.stdout").read_text(), BT)
    for address in BT:
        want = drift.prediction(table, address)
        assert drift.routing_matches(want, got[address]), (address, want, got[address])
    more = ["bug-hurd@gnu.test", "gnu-all@gnu.test", "root@gnu.test", '"with space"@gnu.test',
            "postmaster@gnu.test", "fwd1@gnu.test"]  # fmt: skip
    names = [*more[:3], '"with space"@gnu.test', "postmaster@gnu.test", "ADB@GNU.TEST", "fwd1@gnu.test",
             "bad address", "x@offsite.test"]  # fmt: skip
    got = probe.parse_bt((FIXTURES / "bt_patch_more.stdout").read_text(), names)
    for address in more:
        assert drift.routing_matches(drift.prediction(table, address), got[address]), address


def test_predictions():
    table = lab_table()
    assert drift.prediction(table, "trolls@gnu.test") == {
        "result": "mixed",
        "to": ["nemo@offsite.test"],
        "primary": ["adb@gnu.test", "trolls-archive@gnu.test"],
    }
    assert drift.prediction(table, "info-gnu@gnu.test") == {
        "result": "primary",
        "primary": ["info-gnu@gnu.test"],
    }
    assert drift.prediction(table, "gone@gnu.test") == {"result": "refused"}
    assert drift.prediction(table, "nosuch@gnu.test") == {"result": "refused"}
    assert drift.prediction(table, '"with space"@gnu.test') == {
        "result": "remote",
        "to": ["nemo@offsite.test"],
    }
    assert drift.prediction(table, "RMS@gnu.test") == {"result": "remote", "to": ["rms@offsite.test"]}
    assert drift.prediction({"routes": {"d": {"action": "defer"}}}, "d@gnu.test") == {"result": "defer"}
    assert drift.prediction({"routes": {"b": {"action": "blackhole"}}}, "b@gnu.test") == {"result": "discard"}


def test_routing_matches_normalises_case():
    want = {"result": "mixed", "to": ["a@offsite.test"], "primary": ["adb@gnu.test"]}
    assert drift.routing_matches(
        want, {"result": "mixed", "to": ["a@OFFSITE.test"], "primary": ["ADB@gnu.test"]}
    )
    assert not drift.routing_matches(
        want, {"result": "mixed", "to": ["A@offsite.test"], "primary": ["adb@gnu.test"]}
    )
    assert drift.routing_matches(
        {"result": "refused"}, {"result": "refused", "message": "Unrouteable address"}
    )
    assert not drift.routing_matches({"result": "refused"}, None)


# --------------------------------------------------------------------------- the sampler


def test_sample_all_when_small():
    assert drift.routing_sample(["b", "a", "a"], 5, seed=1) == ["a", "b"]


def test_sample_is_stable_and_seeded():
    pool = [f"u{i}@gnu.test" for i in range(1000)]
    one = drift.routing_sample(pool, 50, seed=7)
    assert one == drift.routing_sample(list(reversed(pool)), 50, seed=7)
    assert one == sorted(one) and len(one) == 50
    assert one != drift.routing_sample(pool, 50, seed=8)


def test_sample_takes_priority_addresses_up_to_a_cap():
    pool = [f"u{i}@gnu.test" for i in range(1000)]
    punt = pool[:20]
    got = drift.routing_sample(pool, 50, seed=3, priority=punt)
    assert set(punt) <= set(got)
    capped = drift.routing_sample(pool, 50, seed=3, priority=pool[:100], priority_cap=10)
    assert len(capped) == 50
    assert len(set(capped) & set(pool[:100])) >= 10


def test_routing_plan():
    table = lab_table()
    plan = drift.routing_plan(table, "gnu.test", size=5, seed=1, priority_cap=4)
    assert len(plan["addresses"]) == 5
    assert plan["addresses"][-1] == drift.UNKNOWN_LOCAL_PART + "@gnu.test"
    assert set(plan["expected"]) == set(plan["addresses"])
    results = [plan["expected"][a]["result"] for a in plan["addresses"][:-1]]
    assert set(results) <= {"primary", "mixed"}  # punted addresses first
    full = drift.routing_plan(table, "gnu.test", size=1000)
    assert '"with space"@gnu.test' in full["addresses"]
    assert plan == drift.routing_plan(copy.deepcopy(table), "gnu.test", size=5, seed=1, priority_cap=4)
    with pytest.raises(drift.DriftError):
        drift.routing_plan({}, "gnu.test")


# --------------------------------------------------------------------------- Debian versions


ORDERED = [
    "1.0~rc1",
    "1.0",
    "1.0-1",
    "1.0-1+b1",
    "1.0a",
    "1.0.1",
    "1.10",
    "4.96-15+deb12u10",
    "4.96-15+deb12u10+smartmx1",
    "4.96-15+deb12u11",
    "4.96-15+deb12u11+smartmx1",
    "4.98.2-1",
    "1:0.1",
]


def test_debian_order():
    for lower, higher in itertools.pairwise(ORDERED):
        assert dv.compare(lower, higher) == -1, (lower, higher)
        assert dv.compare(higher, lower) == 1, (lower, higher)
    assert sorted(reversed(ORDERED), key=dv.sort_key) == ORDERED


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0", "1.0", 0),
        ("0:1.0", "1.0", 0),
        ("1.0-0", "1.0", 0),
        ("1.01", "1.1", 0),
        ("1.0~~", "1.0~", -1),
        ("1.0~", "1.0", -1),
        ("1.0+", "1.0", 1),
        ("2.0-1", "10.0-1", -1),
        ("1.0-1~bpo1", "1.0-1", -1),
    ],
)
def test_debian_pairs(a, b, want):
    assert dv.compare(a, b) == want


def test_debian_bad_version():
    with pytest.raises(dv.VersionError):
        dv.compare("", "1.0")
    with pytest.raises(dv.VersionError):
        dv.split(None)
    assert dv.strip_suffix("4.96-15+deb12u10+smartmx1", "+smartmx1") == ("4.96-15+deb12u10", True)
    assert dv.newest(["1.0", "1.0~rc1", "0.9"]) == "1.0"


def _samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_have_every_check_and_timestamps():
    data = good_input()
    data["probes"]["mx1"] = {"units": {}}
    _set((*P, "config", "sha256"), "9" * 64)(data)
    got = report(data, schedule_host="mx1")
    text = drift.metrics(got, "mx2", NOW + 5)
    samples = _samples(text)
    for check in drift.CHECKS:
        if check != "schedule":
            assert f'smartmx_drift{{mx="mx2",check="{check}"}}' in samples
    assert 'smartmx_drift{mx="mx2",check="schedule"}' not in samples
    assert samples['smartmx_drift{mx="mx2",check="config"}'] == 1
    assert samples['smartmx_drift{mx="mx2",check="data"}'] == 0
    assert samples['smartmx_drift_checked{mx="mx2",check="routing"}'] == 0  # skipped: config drifted
    assert samples['smartmx_drift_checked{mx="mx2",check="data"}'] == 1
    assert samples['smartmx_drift_check_last_run_timestamp_seconds{mx="mx2"}'] == NOW + 5
    assert samples['smartmx_alias_sync_last_success_timestamp_seconds{mx="mx2"}'] == NOW - 60
    assert samples['smartmx_drift_host_checked{mx="mx2"}'] == 1
    runner = _samples(drift.metrics(got, "mx1", NOW))
    assert runner['smartmx_drift{mx="mx1",check="schedule"}'] == 0
    assert "# TYPE smartmx_drift gauge" in text and text.endswith("\n")


def test_metrics_of_an_unchecked_host_and_a_skipped_check():
    data = good_input()
    _set((*P, "exim", "local_build"), False)(data)
    data["probes"]["mx3"] = {"unreachable": True, "msg": "gone"}
    got = report(data, secondaries=["mx2", "mx3"])
    mx2 = _samples(drift.metrics(got, "mx2", NOW))
    assert mx2['smartmx_drift{mx="mx2",check="routing"}'] == 0
    assert mx2['smartmx_drift_checked{mx="mx2",check="routing"}'] == 0
    mx3 = _samples(drift.metrics(got, "mx3", NOW))
    assert mx3['smartmx_drift_host_checked{mx="mx3"}'] == 0
    assert mx3['smartmx_drift{mx="mx3",check="data"}'] == 0
    with pytest.raises(drift.DriftError):
        drift.metrics(got, "mx9", NOW)


def test_summary_names_host_check_and_fix():
    data = good_input()
    _set((*P, "exim", "local_build"), False)(data)
    data["probes"]["mx3"] = {"unreachable": True, "msg": "ssh: no route"}
    lines = drift.summary_text(report(data, secondaries=["mx2", "mx3"]), "/tmp/r.json")
    assert lines[0].startswith("DRIFT")
    assert lines[1].startswith("- mx2 build: ") and lines[2].startswith("  fix: apply role exim_build")
    assert "- mx3 NOT CHECKED: ssh: no route" in lines
    assert "- mx2: routing skipped (depends on a drifted check)" in lines
    assert lines[-1] == "report: /tmp/r.json"

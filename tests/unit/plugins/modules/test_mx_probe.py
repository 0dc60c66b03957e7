# SPDX-License-Identifier: GPL-3.0-or-later
"""smartmx.exim.mx_probe in-process, on a generation written by alias_sync, and its parsers on real output.

The files of ``fixtures/mx_probe/`` are the output of the lab's secondary
(``smartmx-lab-mx2``, Debian 12, patched exim 4.96, pfr strategy patch):
``exim4 -bt`` of the lab's aliases, ``apt-cache policy exim4-base``, the
``dpkg-query`` line per exim package, ``exim4 -bV`` and ``systemctl show``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen
from ansible_collections.smartmx.exim.plugins.module_utils import _mx_probe as probe
from ansible_collections.smartmx.exim.plugins.modules import mx_probe

from .sync_harness import run_module

FIXTURES = Path(__file__).parent / "fixtures" / "mx_probe"
INC = "/com/mailer/include"
ALIASES = (
    "postmaster: root\n"
    "staff: :include:/com/mailer/include/staff\n"
    "rms: rms@offsite.test\n"
    'list: "|/usr/lib/mailman/mail/mailman post list"\n'
)
INCLUDES = {f"{INC}/staff": "alice@offsite.test\n:include:/com/mailer/include/more\n", f"{INC}/more": "bob\n"}
FILES = {"rcpt": "rms@gnu.test: accept\n", "punt": "list@gnu.test: pfr\n", "users": "bob\n"}
BT_ADDRESSES = [
    "rms@gnu.test",
    "trolls@gnu.test",
    "info-gnu@gnu.test",
    "nosuch@gnu.test",
    "gone@gnu.test",
    "staff@gnu.test",
    "zarkon@gnu.test",
]
BT_MORE = [
    "bug-hurd@gnu.test",
    "gnu-all@gnu.test",
    "root@gnu.test",
    '"with space"@gnu.test',
    "postmaster@gnu.test",
    "ADB@GNU.TEST",
    "fwd1@gnu.test",
    "bad address",
    "x@offsite.test",
]


def fixture(name):
    return (FIXTURES / name).read_text(encoding="utf-8")


def run_probe(monkeypatch, args, check=False):
    return run_module(monkeypatch, args, check=check, module=mx_probe)


@pytest.fixture
def base(tmp_path, monkeypatch):
    """A base directory with one generation written by alias_sync itself."""
    base = tmp_path / "aliases"
    result, failed = run_module(
        monkeypatch,
        {
            "base_dir": str(base),
            "alias_path": "/com/mailer/aliases",
            "aliases": ALIASES,
            "includes": INCLUDES,
            "allowed_include_dirs": [INC],
            "files": FILES,
        },
    )
    assert not failed, result
    return base


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """Fake exim4, dpkg-query, apt-cache and systemctl printing the lab's real output."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    scripts = {
        "exim4": (
            '#!/bin/sh\nif [ "$1" = -bV ]; then cat "$FIX/exim_bV.txt"; exit 0; fi\n'
            'shift 2\nif [ "$1" = bug-hurd@gnu.test ]; then cat "$FIX/bt_patch_more.stdout"; '
            'else cat "$FIX/bt_patch.stdout"; fi\nexit 2\n'
        ),
        "dpkg-query": '#!/bin/sh\ncat "$FIX/dpkg_query_patched.txt"\n',
        "apt-cache": '#!/bin/sh\ncat "$FIX/apt_policy_patched.txt"\n',
        "systemctl": '#!/bin/sh\ncat "$FIX/systemctl_show.txt"\n',
    }
    for name, text in scripts.items():
        path = bindir / name
        path.write_text(text)
        path.chmod(0o755)
    monkeypatch.setenv("FIX", str(FIXTURES))
    monkeypatch.setattr(mx_probe.Probe, "bin", lambda self, name: str(bindir / os.path.basename(name)))
    return bindir


def fake_proc(root, procs, btime=1796169586):
    """A /proc with btime and the given (pid, ppid, argv, starttime ticks) processes."""
    root.mkdir()
    (root / "stat").write_text(f"cpu  1 2 3\nbtime {btime}\nprocesses 9\n")
    for pid, ppid, argv, ticks in procs:
        d = root / str(pid)
        d.mkdir()
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        fields = ["S", str(ppid)] + ["0"] * 17 + [str(ticks)] + ["0"] * 10
        (d / "stat").write_text(f"{pid} ({os.path.basename(argv[0])}) " + " ".join(fields) + "\n")
    return root


# --------------------------------------------------------------------------- generation


def test_generation_written_by_alias_sync_is_intact(base, monkeypatch):
    result, failed = run_probe(monkeypatch, {"base_dir": str(base), "sections": ["generation", "heartbeat"]})
    assert not failed
    assert result["changed"] is False
    g = result["generation"]
    cur = os.path.basename(os.readlink(base / "current"))
    assert g["current"] == cur
    assert g["generations"] == [cur]
    assert g["intact"], g
    assert (g["mismatched"], g["missing"], g["extra"]) == ([], [], [])
    manifest = json.loads((base / "generations" / cur / "MANIFEST.json").read_text())
    assert g["files_digest"] == gen.files_digest(manifest["files"])
    assert cur.endswith(g["files_digest"][:12])
    assert "relocations" not in g["manifest"]
    assert manifest["relocations"], "the test data must relocate something"
    hb = result["heartbeat"]
    assert hb["exists"] and hb["content"]["generation"] == cur
    assert hb["mtime"] == pytest.approx(os.stat(base / "heartbeat").st_mtime)
    assert set(result["timing"]) == {"generation", "heartbeat"}


def test_generation_changed_on_disk(base, monkeypatch):
    gdir = base / "current"
    for path in gdir.rglob("*"):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    (gdir / "rcpt").write_text("rms@gnu.test: accept\nextra@gnu.test: accept\n")
    (gdir / "include" / "com" / "mailer" / "include" / "more").unlink()
    (gdir / "stray").write_text("x\n")
    result, _failed = run_probe(monkeypatch, {"base_dir": str(base), "sections": ["generation"]})
    g = result["generation"]
    assert not g["intact"]
    assert g["mismatched"] == ["rcpt"]
    assert g["missing"] == ["include/com/mailer/include/more"]
    assert g["extra"] == ["stray"]


def test_relocated_file_changed_only_in_its_include_path(base, monkeypatch):
    aliases = base / "current" / "aliases"
    aliases.chmod(0o600)
    text = aliases.read_text()
    assert "/generations/" in text
    aliases.write_text(text.replace("/include/com/mailer/include/staff", "/include/com/mailer/include/staf"))
    g = run_probe(monkeypatch, {"base_dir": str(base), "sections": ["generation"]})[0]["generation"]
    assert g["mismatched"] == ["aliases"]


def test_missing_base_and_heartbeat_are_reported(tmp_path, monkeypatch):
    result, failed = run_probe(
        monkeypatch, {"base_dir": str(tmp_path / "none"), "sections": ["generation", "heartbeat"]}
    )
    assert not failed
    assert result["generation"]["exists"] is False
    assert result["generation"]["intact"] is False
    assert "does not exist" in result["generation"]["error"]
    assert result["heartbeat"]["exists"] is False


def test_bad_heartbeat_json(tmp_path):
    hb = tmp_path / "heartbeat"
    hb.write_text("{not json")
    got = probe.heartbeat_state(str(hb))
    assert got["exists"] and got["content"] is None and "not JSON" in got["error"]


# --------------------------------------------------------------------------- exim absent, bad options


def test_exim_absent_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(mx_probe.Probe, "bin", lambda self, name: None)
    result, failed = run_probe(
        monkeypatch,
        {
            "base_dir": str(tmp_path),
            "config_path": str(tmp_path / "exim4.conf"),
            "sections": ["exim", "config", "units", "routing"],
            "units": ["exim4.service"],
            "addresses": ["rms@gnu.test"],
        },
    )
    assert not failed
    assert result["exim"]["version"] is None
    assert "exim4 not found" in result["exim"]["errors"]
    assert result["exim"]["local_build"] is False
    assert result["config"]["exists"] is False
    assert result["units"]["exim4.service"]["error"] == "systemctl not found"
    assert result["routing"]["rms@gnu.test"]["result"] == "error"
    assert result["routing_errors"] == ["exim4 not found"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"units": ["exim4"]}, "systemd unit name"),
        ({"addresses": ["a\nb@gnu.test"]}, "control character"),
        ({"sections": ["nope"]}, "sections"),
        ({"base_dir": "relative/dir"}, "absolute"),
    ],
)
def test_bad_options_fail(monkeypatch, args, message):
    result, failed = run_probe(monkeypatch, args)
    assert failed
    assert message in result["msg"]


# --------------------------------------------------------------------------- with the lab's tools


def test_all_sections_with_the_lab_output(base, tools, tmp_path, monkeypatch):
    conf = tmp_path / "exim4.conf"
    conf.write_text("# config\n")
    os.utime(conf, (1796173209, 1796173209))
    hz = os.sysconf("SC_CLK_TCK")
    proc = fake_proc(
        tmp_path / "proc",
        [
            (60186, 1, ["/usr/sbin/exim4", "-bd", "-q1m"], (1796173212 - 1796169586) * hz),
            (60200, 60186, ["/usr/sbin/exim4", "-bd", "-q1m"], (1796173300 - 1796169586) * hz),
            (61000, 1, ["/bin/sh", "-c", "exim4 -bd"], 5),
        ],
    )
    monkeypatch.setattr(probe, "PROC", str(proc))
    result, failed = run_probe(
        monkeypatch,
        {
            "base_dir": str(base),
            "config_path": str(conf),
            "units": ["exim4.service", "exim4-base.timer", "nosuch.service", "fstrim.timer"],
            "addresses": BT_ADDRESSES,
            "batch_size": 500,
        },
        check=True,
    )
    assert not failed
    assert set(result["timing"]) == set(mx_probe.SECTIONS)
    e = result["exim"]
    assert e["version"] == "4.96"
    assert e["installed_version"] == "4.96-15+deb12u10+smartmx1"
    assert e["base_version"] == "4.96-15+deb12u10"
    assert e["local_build"] is True
    assert e["held"] == ["exim4-base", "exim4-config", "exim4-daemon-heavy"]
    assert e["daemon_package"] == "exim4-daemon-heavy"
    assert e["apt_newest"] == "4.96-15+deb12u11"
    c = result["config"]
    assert c["sha256"] == gen.digest(b"# config\n")
    assert c["daemon_count"] == 1
    assert c["daemon_pid"] == 60186
    assert c["daemon_start"] == pytest.approx(1796173212)
    assert c["daemon_older_than_config"] is False
    u = result["units"]
    assert u["exim4-base.timer"]["ActiveState"] == "active"
    assert u["exim4-base.timer"]["LastTrigger"] == 1796170583.0
    assert u["nosuch.service"]["LoadState"] == "not-found"
    assert result["routing"]["trolls@gnu.test"]["result"] == "mixed"
    assert result["routing_errors"] == []


def test_daemon_older_than_config_and_two_daemons(tmp_path):
    conf = tmp_path / "exim4.conf"
    conf.write_text("x\n")
    os.utime(conf, (1796173209, 1796173209))
    proc = fake_proc(
        tmp_path / "proc",
        [
            (10, 1, ["/usr/sbin/exim4", "-bd", "-q30m"], 100 * 100),
            (20, 1, ["/usr/sbin/exim4", "-bd", "-q30m"], 3700 * 100),
        ],
    )
    got = probe.config_state(str(conf), proc=str(proc), hz=100)
    assert got["daemon_count"] == 2
    assert got["daemon_older_than_config"] is True
    assert [d["pid"] for d in got["daemons"]] == [10, 20]


def test_a_foreground_daemon_counts(tmp_path):
    # Debian 13's exim4.service: exim4 -bdf -q30m; its per-connection child keeps the arguments.
    conf = tmp_path / "exim4.conf"
    conf.write_text("x\n")
    proc = fake_proc(
        tmp_path / "proc",
        [
            (30, 1, ["/usr/sbin/exim4", "-bdf", "-q1m"], 100 * 100),
            (31, 30, ["/usr/sbin/exim4", "-bdf", "-q1m"], 200 * 100),
            (40, 1, ["/usr/sbin/exim4", "-bt", "x@gnu.test"], 300 * 100),
        ],
    )
    got = probe.config_state(str(conf), proc=str(proc), hz=100)
    assert got["daemon_count"] == 1
    assert [d["pid"] for d in got["daemons"]] == [30]


def test_process_start_with_parenthesis_in_name():
    fields = ["S", "1"] + ["0"] * 17 + ["250"] + ["0"] * 5
    start, ppid = probe.process_start("42 (exim (x)) " + " ".join(fields), 1000, 100)
    assert (start, ppid) == (1002.5, 1)


def test_routing_in_batches(base, tools, monkeypatch):
    calls = []
    real = mx_probe.Probe.run

    def run(self, args):
        calls.append(args)
        return real(self, args)

    monkeypatch.setattr(mx_probe.Probe, "run", run)
    result, _failed = run_probe(
        monkeypatch,
        {"sections": ["routing"], "addresses": BT_ADDRESSES + BT_ADDRESSES[:1], "batch_size": 7},
    )
    assert len(calls) == 1  # duplicates dropped: seven addresses, one run
    assert calls[0][1:3] == ["-bt", "--"]
    assert list(result["routing"]) == BT_ADDRESSES


# --------------------------------------------------------------------------- parsers on real output


def test_parse_bt_lab_sample():
    got = probe.parse_bt(fixture("bt_patch.stdout"), BT_ADDRESSES)
    assert got == {
        "rms@gnu.test": {"result": "remote", "to": ["rms@offsite.test"]},
        "trolls@gnu.test": {
            "result": "mixed",
            "to": ["nemo@offsite.test"],
            "primary": ["adb@gnu.test", "trolls-archive@gnu.test"],
        },
        "info-gnu@gnu.test": {"result": "primary", "primary": ["info-gnu@gnu.test"]},
        "nosuch@gnu.test": {"result": "refused", "message": "Unrouteable address"},
        "gone@gnu.test": {"result": "refused", "message": "moved away, see www.gnu.test"},
        "staff@gnu.test": {
            "result": "mixed",
            "to": ["alice@offsite.test", "bob@offsite.test"],
            "primary": ["zarkon@gnu.test"],
        },
        # printed as a duplicate of staff's child, still routed to the primary
        "zarkon@gnu.test": {"result": "primary", "primary": ["zarkon@gnu.test"]},
    }


def test_parse_bt_lab_more():
    got = probe.parse_bt(fixture("bt_patch_more.stdout"), BT_MORE)
    assert got["bug-hurd@gnu.test"] == {"result": "primary", "primary": ["bug-hurd@gnu.test"]}
    assert got["gnu-all@gnu.test"] == {
        "result": "mixed",
        "to": ["alice@offsite.test", "bob@offsite.test"],
        "primary": ["info-gnu@gnu.test", "zarkon@gnu.test"],
    }
    assert got["root@gnu.test"] == {"result": "primary", "primary": ["adb@gnu.test"]}
    assert got["postmaster@gnu.test"] == {"result": "primary", "primary": ["adb@gnu.test"]}
    assert got['"with space"@gnu.test'] == {"result": "remote", "to": ["nemo@offsite.test"]}
    assert got["ADB@GNU.TEST"] == {"result": "primary", "primary": ["ADB@gnu.test"]}
    assert got["fwd1@gnu.test"] == {"result": "remote", "to": ["fwd1@offsite.test"]}
    assert got["bad address"]["result"] == "refused"
    assert got["bad address"]["message"].startswith("syntax error: missing or malformed local part")
    assert got["x@offsite.test"] == {"result": "remote", "to": ["x@offsite.test"]}


def test_parse_bt_defer_discard_child_failures_and_multiline_message():
    out = (
        "slow@gnu.test cannot be resolved at this time: moving\n"
        "mail to void@gnu.test is discarded\n"
        "a@offsite.test\n"
        "    <-- half@gnu.test\n"
        "  router = dnslookup, transport = remote_smtp\n"
        "ghost@gnu.test is undeliverable: Unrouteable address\n"
        "    <-- half@gnu.test\n"
        "list@gnu.test is undeliverable: first line\n"
        "second line\n"
        "p@gnu.test -> |/bin/true *** forbidden ***\n"
        "    <-- pipe@gnu.test\n"
    )
    got = probe.parse_bt(
        out, ["slow@gnu.test", "void@gnu.test", "half@gnu.test", "list@gnu.test", "pipe@gnu.test"]
    )
    assert got["slow@gnu.test"] == {"result": "defer", "message": "moving"}
    assert got["void@gnu.test"] == {"result": "discard"}
    assert got["half@gnu.test"] == {
        "result": "remote",
        "to": ["a@offsite.test"],
        "failed": [{"address": "ghost@gnu.test", "message": "Unrouteable address"}],
    }
    assert got["list@gnu.test"] == {"result": "refused", "message": "first line\nsecond line"}
    assert got["pipe@gnu.test"]["result"] == "error"


def test_parse_bt_no_output_is_an_error():
    assert probe.parse_bt("", ["a@gnu.test"])["a@gnu.test"]["result"] == "error"


def test_apt_policy_lab_stock_and_patched():
    stock = (
        "exim4-base:\n  Installed: 4.96-15+deb12u10\n  Candidate: 4.96-15+deb12u11\n  Version table:\n"
        "     4.96-15+deb12u11 500\n"
        "        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n"
        " *** 4.96-15+deb12u10 500\n"
        "        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n"
        "        100 /var/lib/dpkg/status\n"
    )
    for text in (stock, fixture("apt_policy_patched.txt")):
        got = probe.parse_apt_policy(text)["exim4-base"]
        assert got["candidate"] == "4.96-15+deb12u11"
        assert probe.offered_versions(got, "+smartmx1") == ["4.96-15+deb12u11", "4.96-15+deb12u10"]
    patched = probe.parse_apt_policy(fixture("apt_policy_patched.txt"))["exim4-base"]
    assert [v["installed"] for v in patched["versions"]] == [False, True, False]
    assert patched["versions"][1]["sources"] == ["/var/lib/dpkg/status"]


def test_dpkg_query_lab():
    got = probe.parse_dpkg_query(fixture("dpkg_query_patched.txt"))
    assert got["exim4-daemon-heavy"] == {
        "version": "4.96-15+deb12u10+smartmx1",
        "status": "hi",
        "installed": True,
        "hold": True,
    }
    assert got["exim4-daemon-light"]["installed"] is False
    assert got["exim4-daemon-light"]["version"] is None


def test_build_state_stock():
    dpkg = "exim4-base\t4.96-15+deb12u10\tii \tinstall\nexim4-daemon-light\t4.96-15+deb12u10\tii \tinstall\n"
    got = probe.build_state(
        "Exim version 4.96 #2 built x\n", dpkg, fixture("apt_policy_patched.txt"), "+smartmx1"
    )
    assert got["local_build"] is False
    assert got["held"] == []
    assert got["daemon_package"] == "exim4-daemon-light"
    assert got["packages"]["exim4-config"]["installed"] is False


def test_systemctl_show_lab():
    units = ["exim4.service", "exim4-base.timer", "nosuch.service", "fstrim.timer"]
    got = probe.parse_systemctl_show(fixture("systemctl_show.txt"), units)
    assert got["exim4.service"]["SubState"] == "running"
    assert got["exim4.service"]["ExecMainStatus"] == 0
    assert got["exim4-base.timer"]["NextElapse"] == 1796256000.0
    assert got["fstrim.timer"]["ActiveState"] == "inactive"
    assert got["fstrim.timer"]["LastTrigger"] is None
    assert got["nosuch.service"]["LoadState"] == "not-found"


@pytest.mark.parametrize(
    ("value", "epoch"),
    [("Wed 2026-12-02 00:16:23 UTC", 1796170583.0), ("", None), ("n/a", None), ("@12.5", 12.5), ("x", None)],
)
def test_systemd_time(value, epoch):
    assert probe.systemd_time(value) == epoch


@pytest.mark.parametrize(
    ("started_after_boot", "older"),
    [(3620.5, True), (3621.9, True), (3622.0, False), (3622.9, False), (3624, False)],
)
def test_a_daemon_restarted_within_the_second_of_the_edit_is_not_older(tmp_path, started_after_boot, older):
    # The edit at boot + 3623 s; the daemon's start is known to a second (boot time in whole seconds).
    conf = tmp_path / "exim4.conf"
    conf.write_text("x\n")
    os.utime(conf, (1796169586 + 3623, 1796169586 + 3623))
    proc = fake_proc(tmp_path / "proc", [(10, 1, ["/usr/sbin/exim4", "-bd"], int(started_after_boot * 100))])
    got = probe.config_state(str(conf), proc=str(proc), hz=100)
    assert got["daemon_older_than_config"] is older

# SPDX-License-Identifier: GPL-3.0-or-later
"""The alias_sync action plugin end to end: ansible-playbook with the local connection.

It sends only what the secondary lacks, asks first when it has no hint, and
stays right when its hint is wrong.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
INC = "/com/mailer/include"
PLAYBOOK = """---
- name: Push
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Sync
      smartmx.exim.alias_sync:
        base_dir: "{{ base }}"
        alias_path: /com/mailer/aliases
        aliases: "{{ alias_text }}"
        includes: "{{ include_texts }}"
        allowed_include_dirs: [/com/mailer/include]
        files: "{{ lists }}"
        lock_timeout: "{{ lock_timeout | default(60) }}"
      ignore_errors: true
"""


@pytest.fixture
def site():
    top = tempfile.mkdtemp(prefix="alias-sync-action-")
    home = os.path.join(top, "home")
    os.mkdir(home)
    (Path(top) / "push.yml").write_text(PLAYBOOK, encoding="utf-8")
    yield {"top": top, "home": home, "base": os.path.join(top, "aliases")}
    shutil.rmtree(top)


def data(n=0, rcpt="a@gnu.test accept\n"):
    return {
        "alias_text": f"a: a{n}@example.org\nstaff: :include:{INC}/staff\n",
        "include_texts": {f"{INC}/staff": "b@example.org\n"},
        "lists": {"rcpt": rcpt, "punt": ""},
    }


def push(site, values, *extra):
    varfile = os.path.join(site["top"], "vars.json")
    values = dict(values, base=site["base"], ansible_python_interpreter=sys.executable)
    Path(varfile).write_text(json.dumps(values), encoding="utf-8")
    env = dict(
        os.environ,
        HOME=site["home"],
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    playbook = os.path.join(site["top"], "push.yml")
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", playbook, "-e", f"@{varfile}", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(proc.stdout)
    return report["plays"][0]["tasks"][0]["hosts"]["localhost"]


def hint_files(site):
    kept = Path(site["home"], ".ansible", "cache", "smartmx.exim.alias_sync")
    (hint,) = (p for p in kept.iterdir() if not p.name.endswith(".texts.json"))
    return hint


def test_sends_only_what_changed(site):
    first = push(site, data())
    assert first["changed"] and not first.get("failed")
    assert first["sent_files"] == ["aliases", f"include{INC}/staff", "punt", "rcpt"]
    assert first["counts"]["aliases"] == 2
    beat = Path(site["base"], "heartbeat")
    before = beat.stat().st_mtime_ns
    noop = push(site, data())
    # the remembered manifest matches: a shell check under the lock, then the heartbeat
    assert noop["changed"] is False and noop["heartbeat_only"] is True and "sent_files" not in noop
    assert noop["generation"] == first["generation"] and noop["counts"] == first["counts"]
    assert beat.stat().st_mtime_ns > before
    assert json.loads(beat.read_text())["generation"] == first["generation"]
    assert oct(beat.stat().st_mode & 0o777) == "0o640"
    one = push(site, data(1))
    assert one["changed"] and one["sent_files"] == ["aliases"]
    assert one["changed_files"] == ["aliases"]
    current = Path(site["base"], "current")
    stored = (current / "aliases").read_text()
    assert f"a: a1@example.org\nstaff: :include:{site['base']}/generations/" in stored
    assert (current / f"include{INC}/staff").read_text() == "b@example.org\n"
    assert one["aliases_parsed"] is True
    # only a list changed: the remembered plan serves, its counts brought up to date
    lists = push(site, data(1, rcpt="a@gnu.test accept\nb@gnu.test accept\n"))
    assert lists["changed_files"] == ["rcpt"] and lists["aliases_parsed"] is False
    assert lists["counts"] == dict(one["counts"], rcpt=2, bytes=one["counts"]["bytes"] + 18)
    assert lists["errors"] == one["errors"]


def test_a_wrong_hint_costs_a_round_trip_not_a_wrong_generation(site):
    push(site, data())
    hint = hint_files(site)
    remembered = json.loads(hint.read_text())
    remembered["files"]["rcpt"]["sha256"] = "0" * 64  # the controller misremembers
    remembered["files"]["aliases"]["sha256"] = "1" * 64
    hint.write_text(json.dumps(remembered))
    new = data(2, rcpt="a@gnu.test defer moving\n")
    result = push(site, new)
    assert result["changed"] and not result.get("failed")
    assert result["changed_files"] == ["aliases", "rcpt"]
    assert set(result["sent_files"]) >= {"aliases", "rcpt"}
    assert Path(site["base"], "current", "rcpt").read_text() == "a@gnu.test defer moving\n"
    # a hint that the secondary has lost its generation altogether
    shutil.rmtree(Path(site["base"], "generations"))
    os.unlink(Path(site["base"], "current"))
    again = push(site, data(3))
    assert again["changed"] and again["sent_files"] == ["aliases", f"include{INC}/staff", "punt", "rcpt"]


def test_a_big_file_goes_as_its_changed_lines(site):
    big = "".join(f"user{n}: user{n}@example.org\n" for n in range(5000))
    first = push(site, dict(data(), alias_text=big))
    assert first["changed"] and first["sent_changed_lines"] == []
    moved = big.replace("user2500: user2500@", "user2500: moved@")
    one = push(site, dict(data(), alias_text=moved))
    assert one["changed"] and one["sent_changed_lines"] == ["aliases"] and one["sent_files"] == []
    assert Path(site["base"], "current", "aliases").read_text() == moved
    # the secondary lost its generation: the changed lines do not apply, the file goes whole
    shutil.rmtree(Path(site["base"], "generations"))
    os.unlink(Path(site["base"], "current"))
    again = push(site, dict(data(), alias_text=big))
    assert again["changed"] and "aliases" in again["sent_files"]
    assert Path(site["base"], "current", "aliases").read_text() == big


def test_heartbeat_only_gives_way_to_the_module(site):
    first = push(site, data())
    # a killed run's leftover: the module must run (and clean it)
    Path(site["base"], ".incoming-leftover").mkdir()
    noop = push(site, data())
    assert noop["changed"] is False and "heartbeat_only" not in noop
    assert ".incoming-leftover" in noop["cleaned"]
    # the generation changed behind the controller's back
    manifest = Path(site["base"], "current", "MANIFEST.json")
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"format": 1', '"format": 1 '))
    again = push(site, data())
    assert again["changed"] is False and "heartbeat_only" not in again
    assert again["generation"] == first["generation"]
    assert push(site, data())["heartbeat_only"] is True  # remembered again
    # lock held: the shell fails as the module does, after lock_timeout
    with open(Path(site["base"], ".lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        third = push(site, data(), "-e", "lock_timeout=0.5")
    assert third["failed"] and "another alias_sync run holds" in third["msg"]


@pytest.mark.parametrize(
    "damage, repaired",
    [
        ("edit", ["rcpt"]),
        ("remove", [f"include{INC}/staff"]),
        ("add", ["stray"]),
    ],
)
def test_a_push_of_the_same_data_repairs_a_generation_damaged_on_disk(site, damage, repaired):
    first = push(site, data())
    assert push(site, data())["heartbeat_only"] is True
    gen = Path(site["base"], "generations", first["generation"])
    if damage == "edit":  # a list: hard-linked into the next generation when intact
        (gen / "rcpt").chmod(0o644)
        with open(gen / "rcpt", "a", encoding="utf-8") as f:
            f.write("oops@gnu.test accept\n")
    elif damage == "remove":
        (gen / "include" / INC.lstrip("/") / "staff").unlink()
    else:
        (gen / "stray").write_text("x\n", encoding="utf-8")
    fixed = push(site, data())
    assert fixed["changed"] is True and "heartbeat_only" not in fixed, fixed
    assert fixed["repaired"] == repaired and fixed["changed_files"] == []
    assert fixed["generation"] != first["generation"]
    new = Path(site["base"], "current")
    assert (new / "rcpt").read_text(encoding="utf-8") == "a@gnu.test accept\n"
    assert (new / "include" / INC.lstrip("/") / "staff").read_text(encoding="utf-8") == "b@example.org\n"
    assert not (new / "stray").exists()
    if damage == "edit":  # the damaged file was written anew, not hard-linked
        assert os.stat(new / "rcpt").st_ino != os.stat(gen / "rcpt").st_ino
    again = push(site, data())
    assert again["changed"] is False and again["heartbeat_only"] is True
    assert again["generation"] == fixed["generation"]


def test_refusal_check_mode_and_diff_through_the_action(site):
    push(site, data())
    refused = push(site, dict(data(), alias_text="a: b\0\n"))
    assert refused["failed"] and refused["reason"] == "nul-byte" and refused["line"] == 1
    outside = push(site, dict(data(), alias_text="a: :include:/etc/passwd\nb: c\n"))
    assert outside["failed"] and outside["reason"] == "include-outside"
    before = sorted(p.name for p in Path(site["base"], "generations").iterdir())
    checked = push(site, data(4), "--check", "--diff")
    assert checked["changed"] and checked["changed_files"] == ["aliases"]
    assert "a: a0@example.org" in checked["diff"][0]["before"]
    assert "a: a4@example.org" in checked["diff"][0]["after"]
    assert sorted(p.name for p in Path(site["base"], "generations").iterdir()) == before

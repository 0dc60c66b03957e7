# SPDX-License-Identifier: GPL-3.0-or-later
"""smartmx.exim.alias_sync through the AnsibleModule harness, on a real temporary tree."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from ansible_collections.smartmx.exim.plugins.modules import alias_sync

from .sync_harness import current, run_module, tree

COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".cache" / "collections")
INC = "/com/mailer/include"
ALIASES_PATH = "/com/mailer/aliases"
ALIASES = (
    "# the primary's aliases\n"
    "postmaster: root\n"
    "staff: :include:/com/mailer/include/staff\n"
    "alice: alice@example.org\n"
    "bob: bob@example.net\n"
    'list: "|/usr/lib/mailman/mail/mailman post list"\n'
)
INCLUDES = {
    f"{INC}/staff": "alice@example.org\n:include:/com/mailer/include/more\n",
    f"{INC}/more": "carol@example.com\n",
}
FILES = {"rcpt": "alice@gnu.test accept\nbob@gnu.test accept\n", "punt": "list@gnu.test pfr\n"}


@pytest.fixture
def base():
    # tmp_path of a parametrized test has '[' in it, which base_dir does not allow
    top = tempfile.mkdtemp(prefix="alias-sync-")
    yield os.path.join(top, "aliases")
    shutil.rmtree(top)


def args(base, **over):
    out = {
        "base_dir": base,
        "alias_path": "/com/mailer/aliases",
        "aliases": ALIASES,
        "includes": dict(INCLUDES),
        "allowed_include_dirs": [INC],
        "files": dict(FILES),
        "source": {"host": "mx1.gnu.test", "serial": "1"},
    }
    out.update(over)
    return out


def push(monkeypatch, base, check=False, diff=False, **over):
    result, failed = run_module(monkeypatch, args(base, **over), check=check, diff=diff)
    return result, failed


def ok(monkeypatch, base, **kw):
    result, failed = push(monkeypatch, base, **kw)
    assert not failed, result
    return result


def read(base, rel):
    return Path(base, "current", rel).read_text(encoding="utf-8")


def without_heartbeat(t):
    return {k: v for k, v in t.items() if k != "heartbeat"}


# -- new ---------------------------------------------------------------------


def test_new_generation_layout(monkeypatch, base):
    result = ok(monkeypatch, base)
    assert result["changed"] is True
    gen_id, manifest = current(base)
    assert result["generation"] == gen_id
    assert os.readlink(os.path.join(base, "current")) == f"generations/{gen_id}"
    assert result["changed_files"] == sorted(
        ["aliases", "include/com/mailer/include/staff", "include/com/mailer/include/more", "rcpt", "punt"]
    )
    # the manifest: sha256 of every file as pushed, the id from them
    pushed = {"aliases": ALIASES, "rcpt": FILES["rcpt"], "punt": FILES["punt"]}
    pushed.update({"include" + p: t for p, t in INCLUDES.items()})
    assert manifest["format"] == 1
    assert manifest["generation"] == gen_id
    assert manifest["source"] == {"host": "mx1.gnu.test", "serial": "1", "alias_path": "/com/mailer/aliases"}
    for rel, text in pushed.items():
        data = text.encode()
        assert manifest["files"][rel] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    listing = "".join(f"{manifest['files'][r]['sha256']}  {r}\n" for r in sorted(manifest["files"]))
    assert gen_id.endswith("-" + hashlib.sha256(listing.encode()).hexdigest()[:12])
    assert manifest["counts"]["aliases"] == 5
    assert manifest["counts"]["includes"] == 2
    assert manifest["counts"]["rcpt"] == 2
    # :include: paths point at this generation's real directory, nested ones too
    real = f"{base}/generations/{gen_id}/include"
    assert f"staff: :include:{real}{INC}/staff\n" in read(base, "aliases")
    assert read(base, f"include{INC}/staff") == f"alice@example.org\n:include:{real}{INC}/more\n"
    assert read(base, f"include{INC}/more") == INCLUDES[f"{INC}/more"]
    assert read(base, "rcpt") == FILES["rcpt"]
    # permissions: group-readable, not world-readable or writable
    for root, dirs, files in os.walk(os.path.join(base, "generations")):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) == 0o750
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode) == 0o640
    heartbeat = json.loads(Path(base, "heartbeat").read_text())
    assert heartbeat["generation"] == gen_id
    assert result["heartbeat"]["written"] is True


def test_group_and_mode(monkeypatch, base):
    group = str(os.getgid())
    ok(monkeypatch, base, group=group, mode="0440")
    path = os.path.join(base, "current", "aliases")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o440
    assert os.stat(path).st_gid == os.getgid()


def test_a_run_as_root_leaves_everything_to_the_owner(monkeypatch, base):
    # A first sync run by root (site.yml) must not lock the sync account out of
    # later runs: the lock, like every file, belongs to the owner given.
    nobody = pwd.getpwnam("nobody")
    ok(monkeypatch, base, owner="nobody", group=str(nobody.pw_gid))
    for rel in (".lock", "heartbeat", "current", "generations"):
        st = os.lstat(os.path.join(base, rel))
        assert (rel, st.st_uid, st.st_gid) == (rel, nobody.pw_uid, nobody.pw_gid)


@pytest.mark.parametrize("mode", ["0642", "0600", "0777", "rw"])
def test_mode_must_be_group_readable_and_not_world_writable(monkeypatch, base, mode):
    result, failed = push(monkeypatch, base, mode=mode)
    assert failed
    assert "mode" in result["msg"]


# -- unchanged ---------------------------------------------------------------


def test_unchanged_rewrites_only_the_heartbeat(monkeypatch, base):
    first = ok(monkeypatch, base)
    before = tree(base)
    heartbeat = before["heartbeat"]
    time.sleep(0.01)
    again = ok(monkeypatch, base)
    assert again["changed"] is False
    assert again["generation"] == first["generation"]
    assert again["changed_files"] == []
    assert again["counts"] == first["counts"]
    after = tree(base)
    assert without_heartbeat(after) == without_heartbeat(before)
    assert after["heartbeat"][2] > heartbeat[2]  # mtime moved


# -- changed -----------------------------------------------------------------


def test_changed_makes_a_new_generation_and_links_unchanged_files(monkeypatch, base):
    first = ok(monkeypatch, base)
    old_dir = os.path.join(base, "generations", first["generation"])
    old = {rel: Path(old_dir, rel).read_bytes() for rel in ("aliases", "rcpt", "punt")}
    second = ok(monkeypatch, base, files=dict(FILES, rcpt=FILES["rcpt"] + "carol@gnu.test accept\n"))
    assert second["changed"] is True
    assert second["previous"] == first["generation"]
    assert second["changed_files"] == ["rcpt"]
    gen_id, _manifest = current(base)
    assert gen_id == second["generation"] != first["generation"]
    # the old generation is kept, byte for byte
    assert {rel: Path(old_dir, rel).read_bytes() for rel in old} == old
    new_dir = os.path.join(base, "generations", gen_id)
    # unchanged and not relocated: the same inode; relocated: rewritten for the new id
    assert os.stat(os.path.join(new_dir, "punt")).st_ino == os.stat(os.path.join(old_dir, "punt")).st_ino
    assert (
        os.stat(os.path.join(new_dir, f"include{INC}/more")).st_ino
        == os.stat(os.path.join(old_dir, f"include{INC}/more")).st_ino
    )
    assert f"{base}/generations/{gen_id}/include{INC}/staff" in read(base, "aliases")
    assert first["generation"] not in read(base, "aliases")
    assert first["generation"] not in read(base, f"include{INC}/staff")


def test_a_new_mode_is_not_shared_through_a_hard_link(monkeypatch, base):
    first = ok(monkeypatch, base)
    ok(monkeypatch, base, mode="0440", files=dict(FILES, rcpt="x@gnu.test accept\n"))
    old_punt = os.path.join(base, "generations", first["generation"], "punt")
    assert stat.S_IMODE(os.stat(os.path.join(base, "current", "punt")).st_mode) == 0o440
    assert stat.S_IMODE(os.stat(old_punt).st_mode) == 0o640


def test_removed_include_is_a_change(monkeypatch, base):
    ok(monkeypatch, base)
    includes = {f"{INC}/staff": "alice@example.org\n"}
    result = ok(monkeypatch, base, includes=includes)
    assert result["changed_files"] == [f"include{INC}/more", f"include{INC}/staff"]
    assert not os.path.exists(os.path.join(base, "current", f"include{INC}/more"))


# -- entry-level errors are reported, not refused -----------------------------


def test_entry_errors_are_reported(monkeypatch, base):
    aliases = ALIASES + "broken: <<\nghost: :include:/com/mailer/include/ghost\n"
    includes = dict(INCLUDES, **{f"{INC}/bad": "a@b.org, <<\n"})
    result = ok(monkeypatch, base, aliases=aliases, includes=includes)
    errors = {(e["file"], e["line"]) for e in result["errors"]}
    assert ("/com/mailer/aliases", 7) in errors  # syntax error
    assert ("/com/mailer/aliases", 8) in errors  # include file not pushed
    assert (f"{INC}/bad", 1) in errors
    assert result["counts"]["errors"] == len(result["errors"]) == 3
    assert current(base)[1]["errors"] == result["errors"]


# -- refused -----------------------------------------------------------------


REFUSALS = {
    "nul-byte": ({"aliases": ALIASES + "x: y\0z\n"}, "/com/mailer/aliases", 7),
    "undecodable-replacement": ({"files": {"rcpt": "ok accept\nb\ufffdd accept\n"}}, "rcpt", 2),
    "shrink": ({"aliases": "postmaster: root\nalice: a@example.org\n"}, "aliases", None),
    "include-outside": ({"includes": dict(INCLUDES, **{"/etc/shadow": "x\n"})}, "/etc/shadow", None),
    "include-item-outside": ({"aliases": ALIASES + "evil: :include:/etc/passwd\n"}, "/com/mailer/aliases", 7),
    "include-dotdot": (
        {"aliases": ALIASES + f"evil: :include:{INC}/../../../etc/x\n"},
        "/com/mailer/aliases",
        7,
    ),
    "include-too-long": ({"aliases": ALIASES + f"long: :include:{INC}/{'x' * 200}\n"}, ALIASES_PATH, 7),
    "validate-failed": (
        {"validate": "/bin/sh -c 'echo no good >&2; exit 3' %s", "files": {"rcpt": "new@gnu.test accept\n"}},
        None,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_generation_leaves_current_serving(monkeypatch, base, case):
    over, file, line = REFUSALS[case]
    first = ok(monkeypatch, base)
    before = tree(base)
    result, failed = push(monkeypatch, base, **over)
    assert failed
    assert result["refused"] is True
    reason = case.replace("-replacement", "").replace("-item", "").replace("-dotdot", "-outside")
    assert result["reason"] == reason
    assert result["file"] == file
    assert result["line"] == line
    if line:
        assert f"line {line}" in result["msg"]
    assert result["generation"] == first["generation"]  # still serving
    assert tree(base) == before  # byte-identical, heartbeat included
    if case == "validate-failed":
        assert "no good" in result["msg"] and "rc=3" in result["msg"]


def test_refused_on_a_first_push_writes_no_generation(monkeypatch, base):
    result, failed = push(monkeypatch, base, aliases="a: b\0\n")
    assert failed and result["reason"] == "nul-byte"
    assert not os.path.exists(os.path.join(base, "current"))


def test_shrink_guard_can_be_lifted_for_one_run(monkeypatch, base):
    ok(monkeypatch, base)
    small = "postmaster: root\nalice: a@example.org\n"
    result, failed = push(monkeypatch, base, aliases=small)
    assert failed and result["reason"] == "shrink" and "60.0 % lost" in result["msg"]
    result = ok(monkeypatch, base, aliases=small, max_shrink_percent=70)
    assert result["counts"]["aliases"] == 2
    result, failed = push(monkeypatch, base, aliases="", includes={})
    assert failed and result["reason"] == "shrink"
    assert ok(monkeypatch, base, aliases="", includes={}, max_shrink_percent=100)["counts"]["aliases"] == 0


def test_validate_sees_the_whole_generation_in_place(monkeypatch, base):
    script = 'test -f "$1/aliases" && grep -q "$1/include" "$1/aliases" && test -f "$1/MANIFEST.json"'
    result = ok(monkeypatch, base, validate=f"/bin/sh -c '{script}' check %s")
    assert result["changed"]


def test_validate_needs_the_placeholder(monkeypatch, base):
    result, failed = push(monkeypatch, base, validate="/bin/true")
    assert failed and "%s" in result["msg"]


# -- check mode --------------------------------------------------------------


def test_check_mode_on_a_new_host_writes_nothing(monkeypatch, base):
    result = ok(monkeypatch, base, check=True)
    assert result["changed"] is True
    assert result["heartbeat"]["written"] is False
    assert not os.path.exists(base)


def test_check_mode_before_the_account_exists_warns_instead_of_failing(monkeypatch, base):
    # site.yml --check on a new secondary: the sync account comes with the first real run.
    warned = []
    monkeypatch.setattr(alias_sync.AnsibleModule, "warn", lambda self, msg: warned.append(msg))
    result = ok(monkeypatch, base, check=True, owner="smartmx-no-such-user", group="smartmx-no-such-group")
    assert result["changed"] is True
    assert not os.path.exists(base)
    assert [w for w in warned if "smartmx-no-such-user" in w] and [
        w for w in warned if "smartmx-no-such-group" in w
    ]
    refused, failed = push(monkeypatch, base, owner="smartmx-no-such-user")
    assert failed and refused["msg"] == "no such user or group: smartmx-no-such-user"
    assert not os.path.exists(base)


def test_check_mode_predicts_and_writes_nothing(monkeypatch, base):
    ok(monkeypatch, base)
    before = tree(base)
    changed = dict(FILES, punt="")
    result = ok(monkeypatch, base, check=True, files=changed)
    assert result["changed"] is True and result["changed_files"] == ["punt"]
    same = ok(monkeypatch, base, check=True)
    assert same["changed"] is False
    refused, failed = push(monkeypatch, base, check=True, aliases="a: b\n")
    assert failed and refused["reason"] == "shrink"
    assert tree(base) == before
    real = ok(monkeypatch, base, files=changed)
    assert real["changed_files"] == result["changed_files"]
    assert real["manifest"]["files"] == result["manifest"]["files"]


# -- diff ----------------------------------------------------------------------


def test_diff_shows_the_changed_file_as_pushed(monkeypatch, base):
    ok(monkeypatch, base)
    aliases = ALIASES.replace("bob@example.net", "bob@example.com")
    result = ok(monkeypatch, base, diff=True, aliases=aliases)
    (d,) = result["diff"]
    assert "aliases" in d["before_header"] and "aliases" in d["after_header"]
    assert "bob: bob@example.net\n" in d["before"] and "bob: bob@example.com\n" in d["after"]
    assert "generations" not in d["before"]  # the pushed text, not the relocated one


def test_diff_of_a_big_file_is_the_changed_region_truncated(monkeypatch, base):
    big = "".join(f"user{n}: user{n}@example.org\n" for n in range(20000))
    ok(monkeypatch, base, aliases=big, includes={})
    changed = big.replace("user100: user100@", "user100: moved100@").replace("user200: user200@", "x: y@")
    result = ok(monkeypatch, base, diff=True, aliases=changed, includes={}, diff_max_lines=50)
    (d,) = result["diff"]
    assert d["before"].count("\n") <= 50 and d["after"].count("\n") <= 50
    assert "user100: user100@example.org" in d["before"] and "user100: moved100@example.org" in d["after"]
    assert "lines 98-" in d["before_header"] and "truncated to 50 lines" in d["before_header"]
    small = ok(monkeypatch, base, diff=True, aliases=changed.replace("user19999@", "last@"), includes={})
    (d,) = small["diff"]
    assert d["before"].count("\n") == 4  # three lines of context and the change


# -- prune ---------------------------------------------------------------------


def test_prune_keeps_n_and_never_the_current(monkeypatch, base):
    ids = []
    for n in range(5):
        result = ok(monkeypatch, base, keep=3, source={"serial": str(n)}, files={"rcpt": f"{n}\n"})
        ids.append(result["generation"])
    left = sorted(os.listdir(os.path.join(base, "generations")))
    assert left == sorted(ids[-3:])
    result = ok(monkeypatch, base, keep=1, files={"rcpt": "last\n"})
    assert sorted(os.listdir(os.path.join(base, "generations"))) == [result["generation"]]
    assert sorted(result["pruned"]) == sorted(ids[-3:])


# -- lock ----------------------------------------------------------------------


def test_lock_held_by_another_run(monkeypatch, base):
    ok(monkeypatch, base)
    before = tree(base)
    with open(os.path.join(base, ".lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        start = time.monotonic()
        result, failed = push(monkeypatch, base, lock_timeout=0.5, files={"rcpt": "x\n"})
        waited = time.monotonic() - start
    assert failed
    assert "another alias_sync run holds" in result["msg"] and "0.5 s" in result["msg"]
    assert waited >= 0.5
    assert tree(base) == before
    assert ok(monkeypatch, base, files={"rcpt": "x\n"})["changed"]


def test_a_second_run_waits_for_the_first(monkeypatch, base):
    ok(monkeypatch, base)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, time
            f = open({os.path.join(base, ".lock")!r}, "a")
            fcntl.flock(f, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(0.6)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert child.stdout.readline().strip() == "locked"
    start = time.monotonic()
    result = ok(monkeypatch, base, lock_timeout=10, files={"rcpt": "y\n"})
    assert time.monotonic() - start >= 0.3
    assert result["changed"]
    child.wait()


# -- crash recovery ------------------------------------------------------------

KILLER = """
import os, signal, sys
sys.path.insert(0, {collections!r})
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smartmx.exim.plugins.modules import alias_sync

point, after = {point!r}, {after!r}
calls = [0]

def hit(original):
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    return wrapper

if point == "write_file":
    alias_sync.Target.write_file = hit(alias_sync.Target.write_file)
elif point == "validate":
    alias_sync.Run.validate = hit(alias_sync.Run.validate)
elif point == "heartbeat":
    alias_sync.Target.heartbeat = hit(alias_sync.Target.heartbeat)
with patch_module_args({args!r}):
    alias_sync.main()
"""


@pytest.mark.parametrize(
    ("point", "after", "switched"),
    [("write_file", 0, False), ("write_file", 3, False), ("validate", 0, False), ("heartbeat", 0, True)],
)
def test_killed_run_leaves_current_serving_and_next_run_cleans_up(monkeypatch, base, point, after, switched):
    first = ok(monkeypatch, base)
    old_dir = os.path.join(base, "generations", first["generation"])
    before = {rel: Path(old_dir, rel).read_bytes() for rel in ("aliases", "rcpt", "MANIFEST.json")}
    new_files = {"rcpt": "killed@gnu.test accept\n", "punt": ""}
    values = args(base, files=new_files)
    script = KILLER.format(collections=COLLECTIONS, point=point, after=after, args=values)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    gen_id, _manifest = current(base)
    assert (gen_id == first["generation"]) is not switched
    assert {rel: Path(old_dir, rel).read_bytes() for rel in before} == before
    leftovers = [n for n in os.listdir(base) if n.startswith(".incoming-")]
    if not switched:
        assert leftovers
    result = ok(monkeypatch, base, files=new_files)
    assert not [n for n in os.listdir(base) if n.startswith(".incoming-")]
    assert set(leftovers) <= set(result["cleaned"])
    # what is left is the old generation and the new current one, nothing half-made
    assert set(os.listdir(os.path.join(base, "generations"))) == {first["generation"], result["generation"]}
    assert read(base, "rcpt") == new_files["rcpt"]


# -- changed lines instead of a whole file (what the action plugin sends) -------


def _transfer(base, aliases, **extra):
    from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen

    texts = gen.gather(aliases, INCLUDES, FILES, ALIASES_PATH)
    blobs = {rel: gen.check_text(text, shown) for rel, (text, shown) in texts.items()}
    prefix = len(f"{base}/generations/") + 29 + len("/include")
    transfer = {"manifest": gen.manifest_files(blobs), "sent": [], "plan": gen.plan(texts, [INC], prefix)}
    transfer.update(extra)
    return gen, transfer


def test_changed_lines_rebuild_the_file_from_the_current_generation(monkeypatch, base):
    big = ALIASES + "".join(f"user{n}: user{n}@example.org\n" for n in range(3000))
    first = ok(monkeypatch, base, aliases=big)
    new = big.replace("user1500: user1500@example.org", "user1500: moved@example.org")
    gen, transfer = _transfer(base, new)
    delta = gen.line_delta(big, new)
    assert delta["middle"] == ["user1500: moved@example.org"]
    delta["base_sha256"] = first["manifest"]["files"]["aliases"]["sha256"]
    transfer["deltas"] = {"aliases": delta}
    result = ok(monkeypatch, base, aliases="", includes={}, files={}, transfer=transfer)
    assert result["changed"] and result["changed_files"] == ["aliases"]
    gen_id, manifest = current(base)
    stored = read(base, "aliases")
    assert "user1500: moved@example.org\n" in stored
    assert f":include:{base}/generations/{gen_id}/include{INC}/staff" in stored
    assert manifest["files"]["aliases"]["sha256"] == transfer["manifest"]["aliases"]["sha256"]


def test_changed_lines_on_the_wrong_base_ask_for_the_whole_file(monkeypatch, base):
    ok(monkeypatch, base)
    new = ALIASES.replace("bob@example.net", "bob@example.com")
    gen, transfer = _transfer(base, new)
    delta = gen.line_delta(ALIASES, new)
    delta["base_sha256"] = "0" * 64
    transfer["deltas"] = {"aliases": delta}
    before = tree(base)
    result = ok(monkeypatch, base, aliases="", includes={}, files={}, transfer=transfer)
    assert result["need"] == ["aliases"]
    assert without_heartbeat(tree(base)) == without_heartbeat(before)
    # a delta whose result does not match the manifest is not used either
    delta = gen.line_delta(ALIASES, new.replace("com", "org"))
    delta["base_sha256"] = current(base)[1]["files"]["aliases"]["sha256"]
    transfer["deltas"] = {"aliases": delta}
    result = ok(monkeypatch, base, aliases="", includes={}, files={}, transfer=transfer)
    assert result["need"] == ["aliases"]


def test_undecodable_bytes_are_refused_with_file_and_line():
    """Bytes that were not UTF-8 on the primary (lone surrogates) are refused where they are.

    Such a string cannot travel as module arguments (Ansible's JSON refuses it), so the
    action plugin refuses it on the controller with this check, before any call.
    """
    from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync

    with pytest.raises(_alias_sync.Refusal) as got:
        _alias_sync.check_text("a@b.org\nc\udcff@d.org\n", f"{INC}/staff")
    assert got.value.reason == _alias_sync.UNDECODABLE
    assert got.value.line == 2
    assert f"{INC}/staff: line 2" in str(got.value)

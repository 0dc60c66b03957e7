# SPDX-License-Identifier: GPL-3.0-or-later
"""Send mail into the lab and count where it landed, by Message-ID.

Every message is sent on the outside host through its own exim (``sendmail``),
which looks up the MX records of gnu.test in the lab DNS and falls back from
MX 10 (the primary) to MX 20 (the secondary) by itself. Each message carries
the Message-ID ``<tag-recipient@offsite.test>``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time

import testinfra

PREFIX = "smartmx-molecule"
MX1 = f"{PREFIX}-mx1"
MX2 = f"{PREFIX}-mx2"
OUTSIDE = f"{PREFIX}-outside"
NETWORK = "smartmx-molecule"
MX1_ADDRESS = "172.30.51.11"
DOMAIN = "gnu.test"
SENDER = "sender@offsite.test"

# Where each recipient's mail lands: ("offsite", address) in the off-site
# Maildir, ("maildir", user), ("procmail", user), ("list", name), ("archive", file).
# "forward": it reaches the off-site mailbox through the secondary while the
# primary is down; everything else waits on the secondary for the primary.
ROUTES = {
    "rms": [("forward", "rms@offsite.test")],
    "fwd3": [("forward", "fwd3@offsite.test")],
    "staff": [("forward", "alice@offsite.test"), ("forward", "bob@offsite.test"), ("maildir", "zarkon")],
    "trolls": [("forward", "nemo@offsite.test"), ("procmail", "adb"), ("archive", "trolls")],
    "bug-hurd": [("offsite", "hurd-dev@offsite.test"), ("archive", "bug-hurd")],
    "info-gnu": [("list", "info-gnu")],
    "zarkon": [("maildir", "zarkon")],
    "adb": [("procmail", "adb")],
    "pk": [("offsite", "pk@offsite.test")],
}
UNKNOWN = ["nosuch", "gone"]

_COUNT = r"""
import email.parser, json, os, sys
parser = email.parser.BytesHeaderParser()
out = {}
def add(kind, key, msgid):
    out.setdefault(kind + " " + key, []).append(msgid)
def maildir(path, kind, key, by_envelope=False):
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                h = parser.parse(f)
            if by_envelope:
                add(kind, (h.get("Envelope-to") or "").strip().lower(), (h.get("Message-ID") or "").strip())
            else:
                add(kind, key, (h.get("Message-ID") or "").strip())
for spec in json.loads(sys.argv[1]):
    kind, key, path = spec
    if kind == "offsite":
        maildir(path, kind, key, by_envelope=True)
    elif kind in ("maildir", "procmail"):
        maildir(path, kind, key)
    elif kind == "list" and os.path.exists(path):
        with open(path) as f:
            for line in f:
                add(kind, key, line.strip())
    elif kind == "archive" and os.path.exists(path):
        with open(path, "rb") as f:
            for line in f:
                if line.lower().startswith(b"message-id:"):
                    add(kind, key, line.split(b":", 1)[1].strip().decode())
print(json.dumps(out))
"""


def host(name):
    return testinfra.get_host(f"docker://{name}")


def run(container: str, script: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run a shell script in a lab container."""
    res = subprocess.run(
        ["docker", "exec", container, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"{container}: {script!r} exited {res.returncode}: {res.stderr.strip()}")
    return res


def docker(*args: str, timeout: int = 120) -> str:
    res = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def msgid(tag: str, rcpt: str) -> str:
    return f"<{tag}-{rcpt.replace(' ', '_')}@offsite.test>"


def send(tag: str, rcpts) -> None:
    """One message per recipient, submitted on the outside host (its exim delivers it through DNS)."""
    lines = []
    for rcpt in rcpts:
        address = f"{rcpt}@{DOMAIN}"
        headers = f"From: {SENDER}\nTo: {address}\nSubject: {tag} {rcpt}\nMessage-ID: {msgid(tag, rcpt)}\n"
        message = f"{headers}\n{tag}\n"
        lines.append(
            f"printf %s {shlex.quote(message)} | /usr/sbin/sendmail -f {SENDER} {shlex.quote(address)}"
        )
    run(OUTSIDE, "\n".join(lines))


def wait_until(what: str, probe, timeout: float, every: float = 1.0):
    """Call probe() until it returns a true value; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


def _places():
    outside, mx1 = [("offsite", "", "/var/mail/offsite/Maildir")], []
    mx1 += [("maildir", "zarkon", "/home/zarkon/Maildir"), ("procmail", "adb", "/home/adb/procmail")]
    mx1 += [("list", "info-gnu", "/var/lib/smartmx-lab/lists/info-gnu")]
    mx1 += [("archive", name, f"/com/archive/{name}") for name in ("trolls", "bug-hurd")]
    return outside, mx1


def landed(primary: bool = True) -> dict[str, list[str]]:
    """Every copy that landed: {"<kind> <key>": [Message-ID, ...]} off-site and (primary) on the primary."""
    outside, mx1 = _places()
    out = {}
    for container, places in ((OUTSIDE, outside), (MX1, mx1))[: 2 if primary else 1]:
        res = subprocess.run(
            ["docker", "exec", container, "python3", "-c", _COUNT, json.dumps(places)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        out.update(json.loads(res.stdout))
    return out


def landed_offsite() -> dict[str, list[str]]:
    """The copies in the off-site Maildir (readable while the primary is down)."""
    return landed(primary=False)


def expected(tag: str, rcpts, forwards_only: bool = False) -> dict[str, list[str]]:
    """What landing each message once looks like."""
    out: dict[str, list[str]] = {}
    for rcpt in rcpts:
        for kind, key in ROUTES[rcpt]:
            if forwards_only and kind != "forward":
                continue
            place = "offsite " + key if kind in ("forward", "offsite") else f"{kind} {key}"
            out.setdefault(place, []).append(msgid(tag, rcpt))
    return out


def copies_of(tag: str, where: dict[str, list[str]]) -> dict[str, list[str]]:
    """The copies of messages of one tag, by place, sorted."""
    mark = f"<{tag}-"
    out = {}
    for place, ids in where.items():
        mine = sorted(i for i in ids if i.startswith(mark))
        if mine:
            out[place] = mine
    return out


def normal(table: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in table.items() if v}


def subset(table: dict[str, list[str]], have: dict[str, list[str]]) -> bool:
    """Whether every expected copy is in have (as many times as expected)."""
    for place, ids in table.items():
        got = list(have.get(place, []))
        for i in ids:
            if i not in got:
                return False
            got.remove(i)
    return True


def queue(container: str) -> list[str]:
    """Recipients waiting in a host's exim queue (one line each)."""
    out = run(container, "exim4 -bp").stdout
    return [line.strip() for line in out.splitlines() if line.startswith(" " * 10) and line.strip()]


def log(container: str) -> str:
    return run(container, "cat /var/log/exim4/mainlog").stdout


def bounces(container: str) -> list[str]:
    """Bounces this host generated itself (``<= <> R=<parent id>`` in its log)."""
    return [line for line in log(container).splitlines() if " <= <> " in line and " R=" in line]


def one_daemon(container: str) -> bool:
    """Whether exactly one exim daemon runs (its per-connection children keep its arguments)."""
    procs = [
        line.split(None, 2) for line in run(container, "ps -C exim4 -o pid=,ppid=,args=").stdout.splitlines()
    ]
    daemons = [p for p in procs if len(p) == 3 and {"-bd", "-bdf"} & set(p[2].split())]
    pids = {p[0] for p in daemons}
    return len([p for p in daemons if p[1] not in pids]) == 1

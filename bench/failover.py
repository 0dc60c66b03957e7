# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Failover benchmark on the lab: the primary MX goes away, mail keeps coming.

For each mode (smart, precompute, relay) the lab is deployed in that mode
(``ansible-playbook -i lab/inventory.yml lab/prepare.yml site.yml -e ...``,
skipped when the secondary already runs it; ``--set VAR=VALUE`` adds an extra
variable to every deploy of the run and deploys the first mode in any case),
then one outage is run:

1. the primary goes away (``docker stop smartmx-lab-mx1``, or with
   ``--outage network`` ``docker network disconnect``);
2. the outside host sends one probe forward at once (``sendmail -odi``: the
   sending MTA's own MX 10 -> MX 20 fallback), then a burst (forwards, punts,
   unknown recipients, in a fixed random order, one recipient and one
   Message-ID each): with ``--burst smtp`` (the default) an SMTP client on
   outside (smtplib, ``--senders`` connections with STARTTLS, many messages per
   session) sends it straight to mx2, as a sender that has fallen back to MX 20
   does; with ``--burst mta`` outside's exim takes it with ``exim4 -bS -odqs``
   (routed, SMTP deliveries queued) and sends it with ``--senders`` parallel
   queue runners (``exim4 -q``), through DNS like any MTA. mx2's accept rate is
   counted from the start of the sending to its last accept;
3. once the burst is sent and mx2 has finished its delivery attempts,
   the primary comes back (``docker start`` / ``docker network connect``); a
   watcher inside mx2 notes when mx1's port 25 answers again and when mx2's
   queue is empty (no ``-H`` file in its spool: what ``exim4 -bpc`` counts);
4. when every queue is empty and every expected copy is there (or a timeout
   passes), the final destinations are read: the off-site Maildir (per
   Envelope-to), zarkon's Maildir, adb's procmail Maildir, the info-gnu list
   record and the archive files.

One JSON line per mode goes to stdout (keys: mode, sent,
forwards_delivered_pct, forward_latency_median_s, forward_latency_p95_s,
sender_fallback_s, drain_s, accept_rate_msgs_s, lost, duplicated,
backscatter); progress goes to stderr; the details of the run (load average,
the outage kind, queue counts, the timeline) go to
bench/results/failover-<time>.json. At the end the lab is deployed in smart
mode again (as ``make lab`` leaves it) when another mode ran or ``--set`` was
given.

Exit status: 0 when every mode was measured; 1 when a step failed or timed out.
"""

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = "smartmx-lab"
MX1 = f"{LAB}-mx1"
MX2 = f"{LAB}-mx2"
OUTSIDE = f"{LAB}-outside"
NETWORK = LAB
MX1_IP = "172.30.50.11"
MX2_IP = "172.30.50.12"
MAINLOG = "/var/log/exim4/mainlog"
SENDER = "bench@offsite.test"
ALL_MODES = ("smart", "precompute", "relay")
MODE_VARS = {
    "smart": [],
    "precompute": ["-e", "smartmx_pfr_strategy=precompute"],
    "relay": ["-e", "mx_secondary_mode=relay"],
}
# The header line of mx2's exim configuration that names its mode.
MODE_HEADER = {
    "smart": "mode smart, pfr strategy patch.",
    "precompute": "mode smart, pfr strategy precompute.",
    "relay": "mode relay.",
}
# Punted recipients (percent of --punts) and what each message must leave at
# the final destinations. "offsite:ADDR" is the off-site Maildir by Envelope-to.
PUNT_MIX = (
    ("zarkon", 70, ["zarkon"]),
    ("info-gnu", 10, ["list:info-gnu"]),
    ("trolls", 8, ["adb", "offsite:nemo@offsite.test", "archive:trolls"]),
    ("bug-hurd", 4, ["offsite:hurd-dev@offsite.test", "archive:bug-hurd"]),
    ("adb", 4, ["adb"]),
    ("pk", 4, ["offsite:pk@offsite.test"]),
)
MX1_DESTS = [
    ["zarkon", "maildir", "/home/zarkon/Maildir"],
    ["adb", "maildir", "/home/adb/procmail"],
    ["list:info-gnu", "lines", "/var/lib/smartmx-lab/lists/info-gnu"],
    ["archive:trolls", "mbox", "/com/archive/trolls"],
    ["archive:bug-hurd", "mbox", "/com/archive/bug-hurd"],
]
OUTSIDE_DESTS = [["offsite", "maildir", "/var/mail/offsite/Maildir"]]

# Runs inside a container: every copy of this run's messages at the given
# destinations, as [destination, Message-ID, mtime].
COLLECT = r"""
import json, os, re, sys
spec = json.loads(sys.argv[1])
run, since, out = spec["run"], spec["since"], []
def fields(path):
    with open(path, "rb") as handle:
        head = handle.read(65536).split(b"\n\n", 1)[0]
    found = {}
    for line in re.sub(rb"\n[ \t]+", b" ", head).split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep:
            key = name.strip().lower().decode("ascii", "replace")
            found.setdefault(key, value.strip().decode("utf-8", "replace"))
    return found
for dest, kind, path in spec["paths"]:
    if kind == "maildir":
        for sub in ("new", "cur"):
            try:
                names = os.listdir(os.path.join(path, sub))
            except FileNotFoundError:
                continue
            for name in names:
                file = os.path.join(path, sub, name)
                try:
                    mtime = os.stat(file).st_mtime
                    if mtime < since:
                        continue
                    found = fields(file)
                except FileNotFoundError:
                    continue
                mid = found.get("message-id", "").strip("<>")
                if run not in mid:
                    continue
                where = dest + ":" + found.get("envelope-to", "") if dest == "offsite" else dest
                out.append([where, mid, mtime])
    else:
        try:
            mtime = os.stat(path).st_mtime
            with open(path, "rb") as handle:
                lines = handle.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            if kind == "mbox":
                if not line.lower().startswith("message-id:"):
                    continue
                line = line.split(":", 1)[1]
            line = line.strip().strip("<>")
            if run in line:
                out.append([dest, line, mtime])
print(json.dumps(out))
"""

# Runs inside mx2 while the primary comes back: when mx1's port 25 answers,
# then when mx2's queue is empty (no -H file in the spool, what exim -bpc counts).
WATCH = r"""
import os, socket, sys, time
host, limit = sys.argv[1], float(sys.argv[2])
spool = "/var/spool/exim4/input"
print("ready %.6f" % time.time(), flush=True)
deadline = time.time() + limit
while True:
    try:
        socket.create_connection((host, 25), timeout=0.25).close()
        break
    except OSError:
        pass
    if time.time() > deadline:
        print("timeout reachable", flush=True)
        sys.exit(1)
    time.sleep(0.02)
print("reachable %.6f" % time.time(), flush=True)
while True:
    count = sum(1 for name in os.listdir(spool) if name.endswith("-H"))
    if count == 0:
        break
    if time.time() > deadline:
        print("timeout empty %d" % count, flush=True)
        sys.exit(1)
    time.sleep(0.05)
print("empty %.6f" % time.time(), flush=True)
"""

# The burst's SMTP client (--burst smtp), run on outside: one thread per connection to
# mx2, each sending its share of the messages down one session with STARTTLS, as a
# sending MTA does once it has fallen back to MX 20. Prints the SMTP code of every
# recipient refused, as JSON.
SEND = r"""
import json, smtplib, ssl, sys, threading
spec = json.load(sys.stdin)
refused, errors = {}, []
lock = threading.Lock()

def work(batch):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with smtplib.SMTP(spec["host"], 25, local_hostname=spec["helo"], timeout=120) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ctx)
                smtp.ehlo()
            for rcpt, text in batch:
                try:
                    smtp.sendmail(spec["sender"], [rcpt], text.encode())
                except smtplib.SMTPRecipientsRefused as exc:
                    with lock:
                        refused[rcpt] = exc.recipients[rcpt][0]
    except (OSError, smtplib.SMTPException) as exc:
        with lock:
            errors.append(repr(exc))

jobs, n = spec["jobs"], spec["connections"]
threads = [threading.Thread(target=work, args=(jobs[i::n],)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"refused": refused, "errors": errors}))
"""

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) (<=|=>|->|\*\*|==) (.*)$")
LOG_ANY = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) (.*)$")


class BenchError(Exception):
    pass


def say(text):
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {text}", file=sys.stderr, flush=True)


def run(args, timeout=120, check=True, input_text=None):
    try:
        proc = subprocess.run(
            args, input=input_text, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout} s: {' '.join(args)[:200]}") from exc
    if check and proc.returncode != 0:
        raise BenchError(
            f"failed ({proc.returncode}): {' '.join(args)[:200]}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return proc


def sh(container, script, timeout=120, check=True, input_text=None):
    return run(
        ["docker", "exec", "-i", container, "sh", "-c", script],
        timeout=timeout,
        check=check,
        input_text=input_text,
    ).stdout


def py(container, code, *argv, timeout=120):
    return run(["docker", "exec", container, "python3", "-c", code, *argv], timeout=timeout).stdout


def uptime():
    return run(["uptime"]).stdout.strip()


def wait_for(what, predicate, timeout, interval=0.5):
    """Poll predicate() until it returns a true value; BenchError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- the lab


def running(name):
    proc = run(["docker", "inspect", "-f", "{{.State.Running}}", name], check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def mx1_connected():
    proc = run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", MX1], check=False)
    return proc.returncode == 0 and NETWORK in json.loads(proc.stdout or "{}")


def ensure_lab():
    if all(running(name) for name in (MX1, MX2, OUTSIDE)):
        return
    say("lab not up: make lab")
    proc = subprocess.run(
        ["make", "lab"], cwd=REPO, stdout=sys.stderr, stderr=sys.stderr, timeout=3600, check=False
    )
    if proc.returncode != 0 or not all(running(name) for name in (MX1, MX2, OUTSIDE)):
        raise BenchError("make lab failed")


def queue_count(container):
    return int(sh(container, "exim4 -bpc").strip() or "0")


def exim_up(container):
    return sh(container, "systemctl is-active exim4", check=False).strip() == "active"


def current_mode():
    head = sh(MX2, "sed -n 3p /etc/exim4/exim4.conf", check=False)
    for mode, text in MODE_HEADER.items():
        if text in head:
            return mode
    return None


def exim_version():
    return sh(MX2, "dpkg-query -W -f '${Version}' exim4-base", check=False).strip()


def deployed(mode):
    """mx2 runs mode, with the exim that mode installs (the patched build for smart)."""
    return current_mode() == mode and (mode == "smart") == ("+smartmx" in exim_version())


def check_mode(mode):
    """The secondary runs mode, with the right exim; returns a description."""
    found = current_mode()
    version = exim_version()
    if found != mode:
        raise BenchError(f"mx2 runs mode {found}, not {mode}")
    patched = "+smartmx" in version
    if patched != (mode == "smart"):
        raise BenchError(f"mx2 runs exim {version} in mode {mode}")
    sh(MX2, "exim4 -bV >/dev/null")
    if mode == "smart" and "transport_pfr" not in sh(MX2, "exim4 -bP routers"):
        raise BenchError("mx2's patched exim does not show transport_pfr")
    if not exim_up(MX2):
        raise BenchError("exim4 is not active on mx2")
    return f"mode {mode}, exim {version}"


def deploy(mode, results_dir, stamp, extra_vars=()):
    log = os.path.join(results_dir, f"failover-{stamp}-deploy-{mode}.log")
    env = dict(
        os.environ,
        PATH=f"{REPO}/.venv/bin:{os.environ.get('PATH', '')}",
        SMARTMX_CACHE_DIR=f"{REPO}/.cache/smartmx",
        ANSIBLE_CONFIG=f"{REPO}/ansible.cfg",
    )
    args = ["ansible-playbook", "-i", "lab/inventory.yml", "lab/prepare.yml", "site.yml", *MODE_VARS[mode]]
    args += [arg for var in extra_vars for arg in ("-e", var)]
    say(f"deploy {mode}: {' '.join(args)} (log {os.path.relpath(log, REPO)})")
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.run(
            args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=3600, check=False
        )
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise BenchError(f"ansible-playbook for {mode} failed (rc {proc.returncode}); see {log}")
    say(f"deploy {mode}: done in {took:.0f} s; {check_mode(mode)}")
    return took


# The network aliases mx1 had before a network outage (given back when it reconnects).
SAVED_ALIASES = []


def restore_primary():
    """The primary back on the network and running (idempotent)."""
    if not mx1_connected():
        extra = [arg for alias in SAVED_ALIASES for arg in ("--alias", alias)]
        run(["docker", "network", "connect", "--ip", MX1_IP, *extra, NETWORK, MX1], timeout=60)
    if not running(MX1):
        run(["docker", "start", MX1], timeout=120)


def settle(timeout):
    """Every queue of the lab empty (a queue run is forced where one is not)."""
    for name in (MX1, MX2, OUTSIDE):
        if queue_count(name):
            sh(name, "exim4 -qff", timeout=timeout, check=False)
    wait_for(
        "empty queues on every lab host",
        lambda: not any(queue_count(n) for n in (MX1, MX2, OUTSIDE)),
        timeout,
        1,
    )


# ---------------------------------------------------------------- logs


def log_size(container):
    return int(sh(container, f"stat -c %s {MAINLOG}").strip())


def read_log(container, offset):
    size = log_size(container)
    if size < offset:
        say(f"{container}: {MAINLOG} shrank (rotated?); reading all of it")
        offset = 0
    return sh(container, f"tail -c +{offset + 1} {MAINLOG}", timeout=120)


def stamp_of(text):
    # Every lab container runs in UTC (checked at start).
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()


def parse_log(text):
    """[(time, exim id, flag, rest)] for the delivery lines of an exim main log."""
    out = []
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        if match:
            out.append((stamp_of(match[1]), match[2], match[3], match[4]))
    return out


def message_ids(entries):
    """Message-ID -> (time of the first <= line, exim id)."""
    seen = {}
    for when, exim_id, flag, rest in entries:
        if flag == "<=":
            match = re.search(r" id=(\S+)$", rest)
            if match and match[1] not in seen:
                seen[match[1]] = (when, exim_id)
    return seen


# ---------------------------------------------------------------- messages


def make_messages(run_id, forwards, punts, unknowns, seed):
    """[(Message-ID, recipient, kind, expected destinations)]; the first is the probe."""
    rng = random.Random(seed)
    burst = []
    for n in range(forwards - 1):
        local = "rms" if n % 10 == 9 else f"fwd{n % 50}"
        burst.append((local, "forward", [f"offsite:{local}@offsite.test"]))
    total = sum(share for _local, share, _dests in PUNT_MIX)
    counts = [punts * share // total for _local, share, _dests in PUNT_MIX]
    counts[0] += punts - sum(counts)
    for (local, _weight, dests), count in zip(PUNT_MIX, counts, strict=True):
        burst.extend((local, "punt", dests) for _copy in range(count))
    burst.extend((f"unknown{n}", "unknown", []) for n in range(unknowns))
    rng.shuffle(burst)
    probe = ("rms", "forward", ["offsite:rms@offsite.test"])
    out = []
    for n, (local, kind, dests) in enumerate([probe, *burst]):
        mid = f"{run_id}.{n:05d}.{local}@bench.offsite.test"
        out.append((mid, f"{local}@gnu.test", kind, dests))
    return out


def rfc822(mid, rcpt, run_id, n):
    date = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"Message-ID: <{mid}>\nFrom: {SENDER}\nTo: {rcpt}\nDate: {date}\n"
        f"Subject: failover {run_id} {n}\n\nfailover benchmark message {n}\n"
    )


def bsmtp(messages, run_id):
    parts = []
    for n, (mid, rcpt, _kind, _dests) in enumerate(messages, start=1):
        parts.append(f"MAIL FROM:<{SENDER}>\nRCPT TO:<{rcpt}>\nDATA\n{rfc822(mid, rcpt, run_id, n)}.\n")
    parts.append("QUIT\n")
    return "".join(parts)


def collect(run_id, since):
    spec = {"run": run_id, "since": since - 5}
    copies = []
    for container, paths in ((OUTSIDE, OUTSIDE_DESTS), (MX1, MX1_DESTS)):
        copies += json.loads(py(container, COLLECT, json.dumps({**spec, "paths": paths})))
    return copies


def tally(messages, copies):
    """(lost, duplicated, missing examples) over the expected deliveries."""
    have = {}
    for dest, mid, _when in copies:
        have[(dest, mid)] = have.get((dest, mid), 0) + 1
    expected = {(dest, mid): 1 for mid, _rcpt, _kind, dests in messages for dest in dests}
    lost = sum(1 for key in expected if key not in have)
    duplicated = sum(
        count - expected.get(key, 0) for key, count in have.items() if count > expected.get(key, 0)
    )
    missing = [f"{mid} at {dest}" for dest, mid in expected if (dest, mid) not in have][:5]
    return lost, duplicated, missing


def percentile(values, share):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def rounded(value, digits=3):
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------- one outage


def outage_run(mode, opts, stamp):
    detail = {"mode": mode, "outage": opts.outage, "load_before": uptime()}
    say(f"{mode}: {detail['load_before']}")
    restore_primary()
    wait_for("exim on mx1", lambda: exim_up(MX1), 120, 1)
    settle(opts.timeout)
    # A fresh start for the senders' memory of hosts that were down.
    for name in (OUTSIDE, MX2):
        sh(name, "rm -f /var/spool/exim4/db/retry")
    run_id = f"fo{stamp.replace('-', '')}{mode[:2]}{opts.outage[:2]}{random.randrange(16**4):04x}"
    messages = make_messages(run_id, opts.forwards, opts.punts, opts.unknowns, opts.seed)
    detail["run_id"] = run_id
    offsets = {name: log_size(name) for name in (MX1, MX2, OUTSIDE)}
    return outage_measure(mode, opts, detail, run_id, messages, offsets)


def outage_measure(mode, opts, detail, run_id, messages, offsets):
    probe, burst = messages[0], messages[1:]
    start = time.time()

    if opts.outage == "network":
        nets = json.loads(run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", MX1]).stdout)
        SAVED_ALIASES[:] = [
            a for a in nets[NETWORK].get("Aliases") or [] if not re.fullmatch(r"[0-9a-f]{12}", a)
        ]
        run(["docker", "network", "disconnect", NETWORK, MX1], timeout=60)
    else:
        run(["docker", "stop", MX1], timeout=120)
    t_down = time.time()
    say(f"{mode}: primary away ({opts.outage}) after {t_down - start:.1f} s")

    try:
        # The probe: delivered at once, so its first try is of MX 10.
        sh(
            OUTSIDE,
            f"/usr/sbin/sendmail -odi -oi -f {SENDER} {probe[1]}",
            input_text=rfc822(probe[0], probe[1], run_id, 0),
        )
        if opts.burst == "smtp":
            t_burst = time.time()
            say(f"{mode}: probe sent; {len(burst)} messages to mx2 over {opts.senders} SMTP connections")
            spec = {
                "host": MX2_IP,
                "helo": "outside.offsite.test",
                "sender": SENDER,
                "connections": opts.senders,
                "jobs": [
                    [rcpt, rfc822(mid, rcpt, run_id, n)] for n, (mid, rcpt, _k, _d) in enumerate(burst, 1)
                ],
            }
            sent = json.loads(
                sh(
                    OUTSIDE,
                    f"python3 -c {shlex.quote(SEND)}",
                    input_text=json.dumps(spec),
                    timeout=opts.timeout,
                )
            )
            if sent["errors"]:
                raise BenchError(f"the SMTP client on outside failed: {sent['errors'][:3]}")
            detail["refused_at_rcpt"] = sorted(set(sent["refused"].values()))
            detail["refused_count"] = len(sent["refused"])
            say(f"{mode}: sent in {time.time() - t_burst:.1f} s, {len(sent['refused'])} recipients refused")
        else:
            say(f"{mode}: probe sent; queueing {len(burst)} messages on outside")
            # Routed at once, SMTP deliveries left queued (-odqs): the hints then know which
            # messages wait for which MX, and each queue runner sends many down one connection.
            # (outside's own queue runner, every minute, may already start on them.)
            sh(OUTSIDE, "exim4 -bS -odqs -odi", input_text=bsmtp(burst, run_id), timeout=opts.timeout)
            taken = sh(
                OUTSIDE,
                f"tail -c +{offsets[OUTSIDE] + 1} {MAINLOG} | grep -c ' <= .* U=root P=local.* id={run_id}'"
                " || true",
            )
            if int(taken.strip() or 0) != len(messages):
                raise BenchError(f"outside took {taken.strip()} of {len(messages)} messages")
            t_burst = time.time()
            say(f"{mode}: queued in {t_burst - t_down:.1f} s; {opts.senders} queue runners on outside")
            runners = [
                subprocess.Popen(["docker", "exec", OUTSIDE, "exim4", "-q"], stdout=subprocess.DEVNULL)
                for _runner in range(opts.senders)
            ]
            try:
                for runner in runners:
                    runner.wait(timeout=max(1.0, t_burst + opts.timeout - time.time()))
            except subprocess.TimeoutExpired as exc:
                raise BenchError("outside's queue runners did not finish") from exc
            finally:
                for runner in runners:
                    if runner.poll() is None:
                        runner.kill()
            wait_for("outside's queue empty", lambda: queue_count(OUTSIDE) == 0, opts.timeout, 1)
            say(f"{mode}: outside's queue runs done in {time.time() - t_burst:.1f} s")

        # mx2 has made its first delivery attempt of everything: only the daemon runs, twice in a row.
        def mx2_idle():
            return int(sh(MX2, "ps -C exim4 --no-headers | wc -l").strip()) <= 1

        wait_for("mx2 idle", lambda: mx2_idle() and time.sleep(1) is None and mx2_idle(), opts.timeout, 0.5)
        detail["mx2_queue_before_return"] = queue_count(MX2)
        say(f"{mode}: mx2 holds {detail['mx2_queue_before_return']} messages for the primary")

        # The primary comes back; the watcher inside mx2 times reachability and the drain.
        watcher = subprocess.Popen(
            ["docker", "exec", MX2, "python3", "-u", "-c", WATCH, MX1_IP, str(opts.timeout)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = watcher.stdout.readline()
        if not ready.startswith("ready"):
            raise BenchError(f"watcher on mx2 did not start: {ready!r} {watcher.stderr.read()}")
        t_back = time.time()
        restore_primary()
        t_restored = time.time()
        say(f"{mode}: primary back ({opts.outage}) in {t_restored - t_back:.1f} s")
        try:
            out, err = watcher.communicate(timeout=opts.timeout + 30)
        except subprocess.TimeoutExpired as exc:
            watcher.kill()
            raise BenchError("the drain watcher on mx2 did not finish") from exc
        marks = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        if "empty" not in marks:
            raise BenchError(f"mx2's queue did not empty: {out.strip()} {err.strip()}")
        # Reachable again: the earliest of the watcher's first connection and, after a stop,
        # mx1's daemon start line (listening), after a disconnect, `docker network connect` done.
        t_watch, t_empty = float(marks["reachable"]), float(marks["empty"])
        t_listen = t_restored
        if opts.outage == "stop":
            started = [
                stamp_of(line[:23])
                for line in read_log(MX1, offsets[MX1]).splitlines()
                if " daemon started: " in line and LOG_ANY.match(line)
            ]
            t_listen = started[-1] if started else t_watch
        t_reach = min(t_watch, t_listen)
        detail["reachable_marks"] = {
            "watcher": rounded(t_watch - t_back),
            "listen": rounded(t_listen - t_back),
        }
        if queue_count(MX2):
            raise BenchError("exim4 -bpc on mx2 is not 0 after the watcher saw an empty spool")
        say(
            f"{mode}: mx1 reachable {t_reach - t_back:.1f} s after the return,"
            f" mx2 empty {t_empty - t_reach:.2f} s on"
        )
    finally:
        restore_primary()

    # Every queue empty and every expected copy there, then a little longer for late duplicates.
    def complete():
        if any(queue_count(n) for n in (MX1, MX2, OUTSIDE)):
            return False
        return tally(messages, collect(run_id, start))[0] == 0

    try:
        wait_for("every expected delivery", complete, opts.timeout, 2)
    except BenchError as exc:
        say(f"{mode}: {exc} (counted as lost)")
    time.sleep(3)
    copies = collect(run_id, start)
    lost, duplicated, missing = tally(messages, copies)
    logs = {name: parse_log(read_log(name, offsets[name])) for name in (MX1, MX2, OUTSIDE)}

    mx2_in = message_ids(logs[MX2])
    out_in = message_ids(logs[OUTSIDE])
    # Forwards: mx2's <= line -> the copy's mtime in the off-site Maildir.
    arrived = {}
    for dest, mid, mtime in copies:
        if dest.startswith("offsite:"):
            arrived.setdefault(mid, mtime)
    forwards = [m for m in messages if m[2] == "forward"]
    before = sum(1 for m in forwards if m[0] in arrived and arrived[m[0]] < t_back)
    latencies = [arrived[m[0]] - mx2_in[m[0]][0] for m in forwards if m[0] in arrived and m[0] in mx2_in]
    # The probe on outside: its <= line (delivery starts at once: the try of MX 10) -> => via MX 20.
    fallback = None
    if probe[0] in out_in:
        t_in, exim_id = out_in[probe[0]]
        lines = [e for e in logs[OUTSIDE] if e[1] == exim_id]
        via = [e for e in lines if e[2] == "=>" and f"[{MX2_IP}]" in e[3]]
        if via:
            fallback = via[0][0] - t_in
        detail["probe_outside_log"] = [
            line for line in read_log(OUTSIDE, offsets[OUTSIDE]).splitlines() if exim_id in line
        ][:6]
    accepted = sorted(mx2_in[m[0]][0] for m in burst if m[0] in mx2_in)
    # mx2's rate while the sender pushes: from the start of the queue runners to mx2's
    # last accept. outside's own periodic queue run may start while the burst is still
    # being queued and hand mx2 a trickle at the pace of the queueing; those messages
    # are not counted, nor is that time.
    pushed = [t for t in accepted if t >= t_burst]
    rate = len(pushed) / (pushed[-1] - t_burst) if pushed and pushed[-1] > t_burst else None
    bounces = {
        name: sum(1 for e in logs[name] if e[2] == "<=" and e[3].startswith("<> ")) for name in (MX1, MX2)
    }
    etrn = [line for line in read_log(MX2, offsets[MX2]).splitlines() if "ETRN" in line][:4]

    result = {
        "mode": mode,
        "sent": len(messages),
        "forwards_delivered_pct": rounded(100.0 * before / len(forwards), 1),
        "forward_latency_median_s": rounded(statistics.median(latencies)) if latencies else None,
        "forward_latency_p95_s": rounded(percentile(latencies, 0.95)) if latencies else None,
        "sender_fallback_s": rounded(fallback),
        "drain_s": rounded(t_empty - t_reach),
        "accept_rate_msgs_s": rounded(rate, 1),
        "lost": lost,
        "duplicated": duplicated,
        "backscatter": bounces[MX1] + bounces[MX2],
    }
    detail.update(
        {
            "messages": {
                kind: sum(1 for m in messages if m[2] == kind) for kind in ("forward", "punt", "unknown")
            },
            "mx2_accepted": len(accepted),
            "mx2_accepted_before_runners": len(accepted) - len(pushed),
            "accept_span_s": rounded(pushed[-1] - t_burst) if pushed else None,
            # The same over mx2's first to last accept of the burst, the trickle included.
            "accept_rate_whole_span_msgs_s": rounded(len(accepted) / (accepted[-1] - accepted[0]), 1)
            if len(accepted) > 1
            else None,
            "outage_s": rounded(t_back - t_down),
            "back_to_reachable_s": rounded(t_reach - t_back),
            "bounces": bounces,
            "mx2_etrn_log": etrn,
            "missing_examples": missing,
            "load_after": uptime(),
        }
    )
    say(f"{mode}: {detail['load_after']}")
    return result, detail


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes", default=",".join(ALL_MODES), help="comma-separated, of smart,precompute,relay"
    )
    parser.add_argument("--outage", choices=("stop", "network"), default="stop")
    parser.add_argument(
        "--punts", type=int, default=1000, help="messages the secondary must punt (default 1000)"
    )
    parser.add_argument("--forwards", type=int, default=200, help="forward messages, the probe included")
    parser.add_argument("--unknowns", type=int, default=20, help="messages to unknown recipients")
    parser.add_argument(
        "--burst",
        choices=("smtp", "mta"),
        default="smtp",
        help="who sends the burst to mx2: smtp, an SMTP client on outside (smtplib), straight to MX 20 "
        "as a sender that has fallen back; mta, outside's exim through DNS (default smtp)",
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=4,
        help="SMTP connections (--burst smtp) or parallel queue runners (--burst mta) on outside (default 4)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300, help="limit of every wait, in seconds")
    parser.add_argument("--redeploy", action="store_true", help="deploy the first mode even if mx2 runs it")
    parser.add_argument("--no-restore", action="store_true", help="leave the lab in the last mode")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="an extra variable for every deploy of the run (ansible-playbook -e VAR=VALUE; repeatable), "
        "e.g. mx_secondary_etrn_runners=1; the first mode is deployed in any case",
    )
    opts = parser.parse_args(argv)
    modes = [m.strip() for m in opts.modes.split(",") if m.strip()]
    if not modes or any(m not in ALL_MODES for m in modes):
        parser.error(f"--modes takes some of {','.join(ALL_MODES)}")
    if opts.forwards < 1 or opts.punts < 0 or opts.unknowns < 0 or opts.senders < 1:
        parser.error("--forwards and --senders must be >= 1, --punts and --unknowns >= 0")
    for var in opts.set:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", var):
            parser.error(f"--set takes VAR=VALUE, not {var!r}")

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    results_dir = os.path.join(REPO, "bench", "results")
    os.makedirs(results_dir, exist_ok=True)
    report = {"command": " ".join(["bench/failover.py", *(argv if argv is not None else sys.argv[1:])])}
    report.update({"started": stamp, "load_start": uptime(), "set": opts.set, "runs": [], "deploys": {}})
    failed = False
    lines = []
    try:
        ensure_lab()
        for name in (MX1, MX2, OUTSIDE):
            if sh(name, "date +%z").strip() != "+0000":
                raise BenchError(f"{name} does not run in UTC")
        for n, mode in enumerate(modes):
            if ((opts.redeploy or opts.set) and n == 0) or not deployed(mode):
                report["deploys"][mode] = deploy(mode, results_dir, stamp, opts.set)
            else:
                say(f"{mode}: mx2 already runs it ({check_mode(mode)})")
            try:
                result, detail = outage_run(mode, opts, stamp)
            except BenchError as exc:
                say(f"{mode}: FAILED: {exc}")
                report["runs"].append({"mode": mode, "error": str(exc)})
                failed = True
                continue
            lines.append(json.dumps(result))
            print(lines[-1], flush=True)
            report["runs"].append({"result": result, "detail": detail})
    except (BenchError, subprocess.TimeoutExpired) as exc:
        say(f"FAILED: {exc}")
        report["error"] = str(exc)
        failed = True
    finally:
        try:
            restore_primary()
            if not opts.no_restore and (opts.set or not deployed("smart")):
                report["deploys"]["smart (restore)"] = deploy("smart", results_dir, stamp)
        except (BenchError, subprocess.TimeoutExpired) as exc:
            say(f"restoring smart mode FAILED: {exc}")
            report["restore_error"] = str(exc)
            failed = True
        report["load_end"] = uptime()
        path = os.path.join(results_dir, f"failover-{stamp}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        say(f"results: {os.path.relpath(path, REPO)}; {report['load_end']}")
        for line in lines:
            say(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The secondary's periodic queue runs while the primary is down, on the lab.

While the primary is down every message held for it stays in the secondary's
queue, and each periodic queue run (``mx_secondary_queue_interval``, 1 minute)
goes through all of them: a delivery process per message, which finds that the
primary's retry time has not come and defers. With many messages held, one run
lasts longer than the interval, and exim's daemon starts the next runners beside
it, up to ``queue_run_max`` (exim's default 5, the role's
``mx_secondary_queue_run_max``, default 1).

For each value of ``--values`` (in that order), on the lab of ``make lab`` in
smart mode:

1. deploy it (``ansible-playbook -i lab/inventory.yml lab/prepare.yml site.yml
   -e mx_secondary_queue_run_max=N``) while the primary is up;
2. stop the primary (``docker stop smartmx-lab-mx1``) and send ``--held``
   messages for a mailbox user (punts, held on mx2) from outside straight to
   mx2 (the SMTP client of ``failover.py``: smtplib with STARTTLS, one connection
   per 1,000 messages, all at once);
3. for ``--seconds``, every ``--every`` seconds, count the queue runners of
   mx2's daemon (its child processes: nothing else connects meanwhile), and
   take mx2's CPU time (its cgroup) and the host's fuse-overlayfs CPU time;
   count the ``Start queue run`` lines of mx2's log in that span;
4. remove the held messages from mx2 (``exim4 -Mrm``) and start the primary.

Prints one JSON line per value (keys: queue_run_max, held, seconds, runs_started,
runners_max, runners_mean, mx2_cores, fuse_cores) and writes the run's details to
bench/results/held_queue-<time>.json. At the end the lab is deployed with the
role's defaults again.

Exit status: 0 when every value was measured; 1 when a step failed.
"""

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exim_floor import cpu_counter_path, fuse_cpu_s, read_cpu_ns
from failover import (
    MX1,
    MX2,
    MX2_IP,
    OUTSIDE,
    REPO,
    SEND,
    SENDER,
    BenchError,
    deploy,
    ensure_lab,
    log_size,
    queue_count,
    read_log,
    restore_primary,
    rfc822,
    run,
    say,
    sh,
    uptime,
    wait_for,
)

DEFAULT_RUN_MAX = 1


def daemon_children():
    out = sh(MX2, 'pgrep -c -P "$(cat /run/exim4/exim.pid)" || true')
    return int(out.strip() or 0)


def runs_started(offset):
    return read_log(MX2, offset).count(" Start queue run: ")


def remove_held():
    """Every message off mx2's queue (one that a queue runner holds is removed at the next try)."""

    def removed():
        sh(
            MX2,
            "exim4 -bpr | awk '/^ *[0-9]+[smhd] /{print $3}' | xargs -r -n 500 exim4 -Mrm >/dev/null 2>&1",
            timeout=600,
            check=False,
        )
        return queue_count(MX2) == 0

    wait_for("mx2's queue empty", removed, 300, 2)


def measure(value, opts, stamp, results_dir):
    deploy("smart", results_dir, stamp, [f"mx_secondary_queue_run_max={value}"])
    got = sh(MX2, "exim4 -bP queue_run_max").strip()
    if got != f"queue_run_max = {value}":
        raise BenchError(f"mx2 says {got!r} after the deploy of {value}")
    run_id = f"hq{stamp}q{value}"
    run(["docker", "stop", MX1], timeout=120)
    try:
        before = queue_count(MX2)
        say(f"queue_run_max {value}: primary stopped; sending {opts.held} messages for {opts.user}")
        t0 = time.monotonic()
        # failover.py's SMTP client; exim takes at most 1,000 messages per connection.
        rcpt = f"{opts.user}@gnu.test"
        spec = {
            "host": MX2_IP,
            "helo": "outside.offsite.test",
            "sender": SENDER,
            "connections": -(-opts.held // 1000),
            "jobs": [
                [rcpt, rfc822(f"{run_id}.{n}@bench.offsite.test", rcpt, run_id, n)] for n in range(opts.held)
            ],
        }
        sent = json.loads(
            sh(OUTSIDE, f"python3 -c {shlex.quote(SEND)}", input_text=json.dumps(spec), timeout=3600)
        )
        if sent["errors"] or sent["refused"]:
            raise BenchError(f"sending failed: {sent['errors'][:3]} {list(sent['refused'].items())[:3]}")
        wait_for(f"{opts.held} messages held on mx2", lambda: queue_count(MX2) >= before + opts.held, 600, 2)
        say(f"queue_run_max {value}: {queue_count(MX2)} held after {time.monotonic() - t0:.0f} s; sampling")
        cpu_path = cpu_counter_path(MX2)
        offset = log_size(MX2)
        c0, f0, t_start = read_cpu_ns(cpu_path), fuse_cpu_s(), time.monotonic()
        samples = []
        while time.monotonic() - t_start < opts.seconds:
            samples.append(daemon_children())
            time.sleep(opts.every)
        c1, f1, t_end = read_cpu_ns(cpu_path), fuse_cpu_s(), time.monotonic()
        span = t_end - t_start
        result = {
            "queue_run_max": value,
            "held": queue_count(MX2),
            "seconds": round(span, 1),
            "runs_started": runs_started(offset),
            "runners_max": max(samples),
            "runners_mean": round(statistics.mean(samples), 2),
            "mx2_cores": round((c1 - c0) / 1e9 / span, 2),
            "fuse_cores": round((f1 - f0) / span, 2),
        }
        return result, samples
    finally:
        say(f"queue_run_max {value}: removing the held messages, starting the primary")
        remove_held()
        restore_primary()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", default="5,1", help="queue_run_max values, in order (default 5,1)")
    parser.add_argument(
        "--held", type=int, default=10000, help="messages held for the primary (default 10000)"
    )
    parser.add_argument("--seconds", type=float, default=240, help="sampling span per value (default 240)")
    parser.add_argument("--every", type=float, default=5, help="seconds between samples (default 5)")
    parser.add_argument("--user", default="zarkon", help="the mailbox user the messages are for")
    opts = parser.parse_args(argv)
    values = [int(v) for v in opts.values.split(",")]
    if any(v < 1 for v in values):
        parser.error("--values are at least 1")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    results_dir = os.path.join(REPO, "bench", "results")
    os.makedirs(results_dir, exist_ok=True)
    report = {"started": stamp, "load_start": uptime(), "held": opts.held, "runs": []}
    status = 0
    try:
        ensure_lab()
        for value in values:
            result, samples = measure(value, opts, stamp, results_dir)
            report["runs"].append({**result, "samples": samples, "load_after": uptime()})
            print(json.dumps(result), flush=True)
    except BenchError as exc:
        say(f"failed: {exc}")
        status = 1
    finally:
        restore_primary()
        if values != [DEFAULT_RUN_MAX]:
            deploy("smart", results_dir, stamp + "-restore")
    path = os.path.join(results_dir, f"held_queue-{stamp}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    say(f"results: {os.path.relpath(path, REPO)}; {uptime()}")
    return status


if __name__ == "__main__":
    sys.exit(main())

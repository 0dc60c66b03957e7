# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Where the machine's CPU goes while the lab works: cores used per lab container.

Samples, every ``--every`` seconds, the CPU time of each lab container (its
cgroup's counter) and of the host's ``fuse-overlayfs`` processes (the storage
driver's user-space layer, when the storage driver is fuse-overlayfs), and
prints one JSON line per ``--window`` seconds: the end of the window (UTC) and
the cores each of them used during it (CPU seconds / wall seconds), and their
sum. Nothing runs inside the containers. Run it beside a benchmark, e.g.

    python bench/cpu_split.py --seconds 180 > cpu.jsonl &
    python bench/failover.py --modes smart

It stops after ``--seconds`` or at Ctrl-C, and prints the window under way last.

Exit status: 0; 1 when a container is not running or stops meanwhile.
"""

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exim_floor import cpu_counter_path, fuse_cpu_s, read_cpu_ns

LAB_CONTAINERS = ("smartmx-lab-mx1", "smartmx-lab-mx2", "smartmx-lab-outside")


def sample(paths):
    return time.monotonic(), {**{n: read_cpu_ns(p) / 1e9 for n, p in paths.items()}, "fuse": fuse_cpu_s()}


def window_line(first, last):
    (t0, a), (t1, b) = first, last
    span = t1 - t0
    cores = {key: round((b[key] - a[key]) / span, 2) for key in a}
    cores["sum"] = round(sum(cores.values()), 2)
    return {"end": dt.datetime.now(dt.UTC).strftime("%H:%M:%S"), "seconds": round(span, 1), **cores}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--containers", default=",".join(LAB_CONTAINERS), help="comma-separated container names"
    )
    parser.add_argument("--seconds", type=float, default=300, help="how long to sample (default 300)")
    parser.add_argument("--every", type=float, default=0.5, help="sampling interval in seconds (default 0.5)")
    parser.add_argument("--window", type=float, default=5, help="seconds per output line (default 5)")
    opts = parser.parse_args(argv)
    try:
        paths = {n: cpu_counter_path(n) for n in opts.containers.split(",") if n}
        start = first = sample(paths)
    except RuntimeError as exc:
        print(f"cpu_split: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            while time.monotonic() - start[0] < opts.seconds:
                time.sleep(opts.every)
                now = sample(paths)
                if now[0] - first[0] >= opts.window:
                    print(json.dumps(window_line(first, now)), flush=True)
                    first = now
        except KeyboardInterrupt:
            pass
        now = sample(paths)
    except OSError as exc:  # a container stopped: its cgroup is gone
        print(f"cpu_split: {exc}", file=sys.stderr)
        return 1
    if now[0] - first[0] >= opts.every:
        print(json.dumps(window_line(first, now)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

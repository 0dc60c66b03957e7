# SPDX-License-Identifier: GPL-3.0-or-later
"""Time smartmx.exim.alias_sync against ansible.builtin.copy over the Docker connection.

Generates bench_aliases.py's synthetic site (100,000 aliases by default), keeps
--includes of its include files (the :include: aliases of the others become a
plain forward), adds rcpt and punt lists of one line per alias, and pushes that
generation to one container (smartmx-syncbench-mx2, image
smartmx-lab/debian:bookworm, started with `sleep infinity` if it is not running)
with the community.docker.docker connection and pipelining (ansible.cfg):

* first push into an empty base directory, no-op push of the same data, push
  with one alias changed: smartmx.exim.alias_sync;
* first copy and no-op copy of the same files (the data directory: aliases,
  include/..., rcpt, punt) with ansible.builtin.copy, in the same runs.

Each sync run also times one ansible.builtin.ping task (ping_s in the result
file, not in the summary line): the cost of one trivial module call at that
moment, the floor for any task. Every figure is the task's own duration from the ansible.posix.json callback
(the playbook's start-up is left out; it is recorded as wall_s beside it), the
median of --runs runs. The module's peak RSS on the target comes from a small
interpreter wrapper there (RUSAGE_CHILDREN of each module process); the figure
is the largest of every alias_sync process of every run.

The last line printed is one JSON object with exactly the keys aliases,
include_files, first_s, noop_s, one_change_s, copy_first_s, copy_noop_s and
module_peak_rss_mb. The full result goes to bench/results/alias_sync-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests" / "differential"))

import bench_aliases  # noqa: E402

IMAGE = "smartmx-lab/debian:bookworm"
WRAPPER_DIR = "/opt/syncbench"
WRAPPER = f"""#!/usr/bin/python3
# Runs the module with the real interpreter; records the child's peak RSS (KiB) and CPU seconds.
import resource, subprocess, sys, time
rc = subprocess.call(["/usr/bin/python3", *sys.argv[1:]])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open("{WRAPPER_DIR}/rss.log", "a") as f:
    f.write("%.3f %d %.3f %.3f\\n" % (time.time(), r.ru_maxrss, r.ru_utime, r.ru_stime))
sys.exit(rc)
"""

PLAYBOOK = """---
- name: Bench
  hosts: "{{ bench_host }}"
  gather_facts: false
  tasks:
    - name: Sync
      when: bench_mode == 'sync'
      smartmx.exim.alias_sync:
        base_dir: "{{ bench_base }}"
        alias_path: /com/mailer/aliases
        aliases: "{{ alias_text }}"
        includes: "{{ include_texts }}"
        allowed_include_dirs: [/com/mailer/include]
        files: "{{ lists }}"
        source: {host: mx1.gnu.test, serial: "{{ bench_serial }}"}
    - name: Ping
      when: bench_mode == 'ping'
      ansible.builtin.ping:
    - name: Copy
      when: bench_mode == 'copy'
      ansible.builtin.copy:
        src: "{{ bench_data }}/"
        dest: "{{ bench_base }}/"
        mode: "0640"
"""


def site_files(n_aliases: int, n_includes: int, seed: int) -> dict:
    """The generation's texts: aliases, includes (n_includes of them), rcpt and punt."""
    site = bench_aliases.generate(n_aliases, seed)
    keep = sorted(site["includes"])[:n_includes]
    text = site["aliases"]
    for path in sorted(set(site["includes"]) - set(keep)):
        first = site["includes"][path].split("\n", 1)[0]
        text = text.replace(f":include:{path}\n", f"{first}\n", 1)
    includes = {p: site["includes"][p] for p in keep}
    keys = site["keys"]
    rcpt = "".join(f"{k}@gnu.test accept\n" for k in sorted(set(keys)))
    punt = "".join(f"{k}@gnu.test pfr\n" for k in sorted(set(keys)) if k.endswith(("-request", "-owner")))
    return {"aliases": text, "includes": includes, "lists": {"rcpt": rcpt, "punt": punt}, "keys": keys}


def one_change(text: str, keys: list, k: int) -> str:
    """The alias file with one plain forward given a new target."""
    for key in keys[k * 97 :]:
        start = text.find(f"\n{key}: ")
        if start < 0:
            continue
        end = text.index("\n", start + 1)
        line = text[start + 1 : end]
        value = line.split(": ", 1)[1]
        if "@" in value and "," not in value and not value.startswith(('"', ":")):
            return text[: start + 1] + f"{key}: {key}.moved-{k}@example.net" + text[end:]
    raise RuntimeError("no plain forward to change")


def write_data(root: Path, files: dict) -> None:
    (root / "aliases").write_text(files["aliases"], encoding="utf-8")
    for path, body in files["includes"].items():
        dest = root / "include" / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body, encoding="utf-8")
    for name, body in files["lists"].items():
        (root / name).write_text(body, encoding="utf-8")


def docker(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, text=True, capture_output=True, **kw)


def start_container(name: str) -> None:
    state = docker("inspect", "-f", "{{.State.Running}}", name, check=False)
    if state.returncode != 0:
        docker("run", "-d", "--name", name, "--label", "smartmx.bench=alias_sync",
               "--entrypoint", "sleep", IMAGE, "infinity")  # fmt: skip
    elif state.stdout.strip() != "true":
        docker("start", name)
    docker("exec", "-i", name, "sh", "-c", f"mkdir -p {WRAPPER_DIR} && cat > {WRAPPER_DIR}/python && "
           f"chmod 0755 {WRAPPER_DIR}/python", input=WRAPPER)  # fmt: skip


def rss_log(name: str, clear: bool = False) -> list[int]:
    if clear:
        docker("exec", name, "sh", "-c", f": > {WRAPPER_DIR}/rss.log")
        return []
    out = docker("exec", name, "cat", f"{WRAPPER_DIR}/rss.log").stdout
    return [int(line.split()[1]) for line in out.splitlines() if line.strip()]


class Bench:
    def __init__(self, work: Path, container: str):
        self.work = work
        self.container = container
        self.inventory = work / "inventory.yml"
        self.playbook = work / "bench.yml"
        self.inventory.write_text(
            "---\nall:\n  vars:\n    ansible_connection: community.docker.docker\n"
            f"    ansible_host: {container}\n  hosts:\n"
            f"    sync:\n      ansible_python_interpreter: {WRAPPER_DIR}/python\n"
            "    copy:\n      ansible_python_interpreter: /usr/bin/python3\n",
            encoding="utf-8",
        )
        self.playbook.write_text(PLAYBOOK, encoding="utf-8")

    def push(self, mode: str, base: str, varfile: Path | None = None, serial: str = "1") -> dict:
        """Run one task; return its duration, the playbook's wall time and the result."""
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        )
        host = "copy" if mode == "copy" else "sync"
        cmd = ["ansible-playbook", "-i", str(self.inventory), str(self.playbook),
               "-e", f"bench_host={host} bench_mode={mode} bench_base={base} bench_serial={serial}",
               "-e", f"bench_data={self.work / 'data'}"]  # fmt: skip
        if varfile is not None:
            cmd += ["-e", f"@{varfile}"]
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, env=env, text=True, capture_output=True, check=False)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{mode} push failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        report = json.loads(proc.stdout)
        for task in report["plays"][0]["tasks"]:
            res = task["hosts"].get(host)
            if task["task"]["name"] in ("Sync", "Ping", "Copy") and res and not res.get("skipped"):
                d = task["task"]["duration"]
                seconds = (_when(d["end"]) - _when(d["start"])).total_seconds()
                return {"s": seconds, "wall_s": round(wall, 3), "changed": res.get("changed"),
                        "sent_files": res.get("sent_files"), "generation": res.get("generation")}  # fmt: skip
        raise RuntimeError(f"no {mode} task in the report")


def _progress(out_file: Path, runs: list, copies: list, **row) -> None:
    """Print one step's figures and keep what is measured so far."""
    print(json.dumps(row), flush=True)
    partial = {"partial": True, "runs": runs, "copies": copies}
    out_file.write_text(json.dumps(partial, indent=1), encoding="utf-8")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aliases", type=int, default=100_000)
    ap.add_argument("--includes", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--container", default="smartmx-syncbench-mx2")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--copy-runs", type=int, help="runs of ansible.builtin.copy (default: --runs; 0: none)")
    opts = ap.parse_args()
    if opts.copy_runs is None:
        opts.copy_runs = opts.runs

    files = site_files(opts.aliases, opts.includes, opts.seed)
    opts.out.mkdir(parents=True, exist_ok=True)
    # The generated playbook and data live outside the checkout (linters scan it).
    work = Path(tempfile.mkdtemp(prefix="smartmx-alias-sync-bench-"))
    (work / "data").mkdir()
    write_data(work / "data", files)
    base_vars = {"alias_text": files["aliases"], "include_texts": files["includes"], "lists": files["lists"]}
    (work / "base.json").write_text(json.dumps(base_vars), encoding="utf-8")
    start_container(opts.container)
    bench = Bench(work, opts.container)
    runs = []
    copies = []
    peak = 0
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_file = opts.out / f"alias_sync-{stamp}.json"
    # Fresh directories per invocation: no earlier run's state (nor the controller's
    # remembered manifest for a base_dir) plays a part in a first push.
    root = f"/var/lib/smartmx/bench/{stamp}"
    for run in range(opts.runs):
        changed = dict(base_vars, alias_text=one_change(files["aliases"], files["keys"], run))
        changed_file = work / f"change-{run}.json"
        changed_file.write_text(json.dumps(changed), encoding="utf-8")
        base = f"{root}/sync-{run}"
        rss_log(opts.container, clear=True)
        row = {
            "first": bench.push("sync", base, work / "base.json"),
            "noop": bench.push("sync", base, work / "base.json"),
            "one_change": bench.push("sync", base, changed_file, serial="2"),
        }
        rss = rss_log(opts.container)
        row["ping"] = bench.push("ping", base)  # the floor: one trivial module call, same moment
        row["rss_kib"] = rss
        peak = max([peak, *rss])
        assert row["first"]["changed"] and not row["noop"]["changed"] and row["one_change"]["changed"], row
        runs.append(row)
        seconds = {k: v["s"] for k, v in row.items() if isinstance(v, dict)}
        _progress(out_file, runs, copies, run=run, **seconds)
    # copy is slow (a round trip per file): its runs come after every sync run
    for run in range(opts.copy_runs):
        dest = f"{root}/copy-{run}"
        row = {"copy_first": bench.push("copy", dest)}
        _progress(out_file, runs, [*copies, row], copy_run=run, copy_first=row["copy_first"]["s"])
        row["copy_noop"] = bench.push("copy", dest)
        copies.append(row)
        _progress(out_file, runs, copies, copy_run=run, copy_noop=row["copy_noop"]["s"])

    def med(key):
        values = [r[key]["s"] for r in runs + copies if key in r]
        return round(statistics.median(values), 3) if values else None

    summary = {
        "aliases": opts.aliases,
        "include_files": len(files["includes"]),
        "first_s": med("first"),
        "noop_s": med("noop"),
        "one_change_s": med("one_change"),
        "copy_first_s": med("copy_first"),
        "copy_noop_s": med("copy_noop"),
        "module_peak_rss_mb": round(peak / 1024, 1),
    }
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    detail = {
        "summary": summary,
        "runs": runs,
        "bytes": len(files["aliases"].encode())
        + sum(len(t.encode()) for t in [*files["includes"].values(), *files["lists"].values()]),
    }
    (opts.out / f"alias_sync-{stamp}.json").write_text(json.dumps(detail, indent=1), encoding="utf-8")
    shutil.rmtree(work)
    docker("exec", opts.container, "rm", "-rf", root)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

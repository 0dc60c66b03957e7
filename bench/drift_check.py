# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The drift check's run time on a deployed pair, by the size of the alias data.

For each size (``--sizes``, default 1,000 and 100,000 aliases) a synthetic site of
bench_aliases.py (seed ``--seed``; its off-site domains are mapped to the lab's
``offsite.test``, which the lab DNS serves) replaces the primary's alias file and
include directory, ``playbooks/sync.yml`` pushes it, and ``playbooks/drift_check.yml``
runs ``--runs`` times on the whole inventory, timed from the start of
``ansible-playbook`` to its exit, with a routing sample of ``--sample`` addresses
(default: every local part for the small site, 2,000 for the big one). The original
alias data is put back and pushed at the end.

The inventory (``--inventory``, default ``lab/inventory.yml``: run ``make lab``
first) must hold a deployed pair; the containers are found by the hosts'
``ansible_host``. The lab's exim is older than apt offers (the mirror lacks the
newer source): those versions are allowed, as in the ``drift`` scenario.

One JSON line per size goes to stdout: ``aliases``, ``local_parts`` (keys of the
alias file), ``routed`` (addresses routed on each secondary), ``runs``, ``median_s``,
``min_s``, ``max_s``, ``sync_s`` (the push before), ``exit_code`` (every run's must be
0: a clean pair), ``probe_s`` (median seconds of the mx_probe sections on the first
secondary) and ``load``; the details go to bench/results/drift_check-<time>.json.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import bench_aliases  # noqa: E402

ALIAS_PATH = "/com/mailer/aliases"
INCLUDE_DIR = "/com/mailer/include"
BACKUP = "/root/drift-bench-backup.tar"


def say(text):
    print(f"[drift bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(cmd, timeout=3600, input_text=None, check=True):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input_text, check=False)
    if check and res.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:4])}... exited {res.returncode}:\n{res.stdout[-3000:]}{res.stderr[-2000:]}"
        )
    return res


def sh(container, script, input_text=None, check=True):
    return run(
        ["docker", "exec", "-i", container, "bash", "-c", script], input_text=input_text, check=check
    ).stdout


def inventory_hosts(inventory):
    data = json.loads(run(["ansible-inventory", "-i", inventory, "--list"]).stdout)
    hostvars = data["_meta"]["hostvars"]

    def members(group):
        return data.get(group, {}).get("hosts", [])

    def container(host):
        return hostvars.get(host, {}).get("ansible_host", host)

    return container(members("mx_primary")[0]), [container(h) for h in members("mx_secondary")]


def lag_versions(container):
    out = sh(
        container,
        "inst=$(dpkg-query -W -f '${Version}' exim4-base); base=${inst%+smartmx1};"
        " apt-cache madison exim4-base | awk -F'|' '{gsub(/ /, \"\", $2); print $2}' | grep -v smartmx |"
        ' while read -r v; do if dpkg --compare-versions "$v" gt "$base"; then echo "$v"; fi; done',
    )
    return sorted(set(out.split()))


def site_text(n_aliases, seed):
    """The synthetic site with its off-site domains mapped to offsite.test (served by the lab DNS)."""
    site = bench_aliases.generate(n_aliases, seed)
    pattern = re.compile(
        r"@(" + "|".join(re.escape(d) for d in sorted(bench_aliases.OFFSITE, key=len, reverse=True)) + r")\b",
        re.IGNORECASE,
    )

    def local(text):
        return pattern.sub("@offsite.test", text)

    return local(site["aliases"]), {path: local(text) for path, text in site["includes"].items()}


def install_site(primary, aliases, includes):
    """The alias file and include files on the primary, as one tar stream (no shell quoting of data)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, text in [(ALIAS_PATH, aliases), *sorted(includes.items())]:
            data = text.encode("utf-8")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, time.time()
            tar.addfile(info, io.BytesIO(data))
    sh(primary, f"rm -rf {INCLUDE_DIR} && mkdir -p {INCLUDE_DIR}")
    subprocess.run(
        ["docker", "exec", "-i", primary, "tar", "-x", "-C", "/", "-f", "-"], input=buf.getvalue(), check=True
    )


def sync(inventory):
    start = time.monotonic()
    run(
        [
            "ansible-playbook",
            "-i",
            inventory,
            str(REPO / "playbooks" / "sync.yml"),
            "-e",
            "alias_data_max_shrink_percent=100",
        ]
    )
    return time.monotonic() - start


def drift_run(inventory, sample, lag, report):
    cmd = [
        "ansible-playbook", "-i", inventory, str(REPO / "playbooks" / "drift_check.yml"),
        "-e", f"drift_check_report={report}", "-e", f"drift_check_routing_size={sample}",
        "-e", json.dumps({"smartmx_security_lag_allowed_versions": lag}),
    ]  # fmt: skip
    start = time.monotonic()
    res = run(cmd, check=False)
    took = time.monotonic() - start
    data = json.loads(Path(report).read_text(encoding="utf-8"))
    return took, data, res.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--inventory", default=str(REPO / "lab" / "inventory.yml"))
    parser.add_argument("--sizes", default="1000,100000", help="alias counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--sample", type=int, default=0, help="routing sample (0: every local part up to 2,000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    primary, secondaries = inventory_hosts(args.inventory)
    lag = lag_versions(secondaries[0])
    say(f"primary {primary}, secondaries {', '.join(secondaries)}; allowed newer exim: {lag or 'none'}")
    sh(primary, f"tar -c -f {BACKUP} {ALIAS_PATH} {INCLUDE_DIR} 2>/dev/null")
    results, lines = [], []
    try:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            aliases, includes = site_text(size, args.seed)
            keys = sum(1 for line in aliases.splitlines() if line and not line[0].isspace() and ":" in line
                       and not line.startswith("#"))  # fmt: skip
            sample = args.sample or min(keys + 1, 2000)
            install_site(primary, aliases, includes)
            sync_s = sync(args.inventory)
            say(
                f"{size} aliases ({keys} local parts, {len(includes)} include files) pushed in {sync_s:.1f} s"
            )
            times, codes, probes, routed, summaries = [], [], [], 0, []
            with tempfile.TemporaryDirectory() as tmp:
                for n in range(args.runs):
                    took, report, rc = drift_run(args.inventory, sample, lag, f"{tmp}/report.json")
                    times.append(took)
                    codes.append(report["exit_code"])
                    summaries.append(report["summary"])
                    first = report["hosts"].get(secondaries_name(report, secondaries[0])) or {}
                    seen = first.get("seen") or {}
                    routed = seen.get("routed", 0)
                    probes.append(seen.get("probe_seconds"))
                    say(f"{size}: run {n + 1} {took:.1f} s, rc {rc}, {report['summary']}")
            load = os.getloadavg()
            line = {
                "aliases": size,
                "local_parts": keys,
                "routed": routed,
                "runs": len(times),
                "median_s": round(statistics.median(times), 2),
                "min_s": round(min(times), 2),
                "max_s": round(max(times), 2),
                "sync_s": round(sync_s, 2),
                "exit_code": max(codes),
                "probe_s": round(statistics.median([p for p in probes if p is not None] or [0]), 2),
                "load": [round(x, 2) for x in load],
            }
            results.append({**line, "times": times, "summaries": summaries})
            lines.append(line)
            print(json.dumps(line), flush=True)
    finally:
        sh(primary, f"rm -rf {INCLUDE_DIR} && tar -x -C / -f {BACKUP} && rm -f {BACKUP}")
        sync(args.inventory)
        say("the original alias data is back and pushed")
    out = REPO / "bench" / "results" / f"drift_check-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"inventory": args.inventory, "results": results}, indent=2) + "\n", encoding="utf-8"
    )
    say(f"details: {out}")
    return 0 if all(r["exit_code"] == 0 for r in lines) else 1


def secondaries_name(report, container):
    """The report's host name of a container (the inventory name may differ from ansible_host)."""
    for host in report["hosts"]:
        if host == container or container.endswith("-" + host) or host.endswith(container):
            return host
    return next((h for h, e in report["hosts"].items() if "secondary" in (e.get("role") or [])), None)


if __name__ == "__main__":
    sys.exit(main())

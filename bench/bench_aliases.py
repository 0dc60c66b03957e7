# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: parse + route 100,000 synthetic aliases, compared with stock exim -bt.

Generates a site (alias file, :include: lists, local users) with a realistic mix,
times ``parse_aliases`` + ``secondary_routes`` in this process (median of
``--runs``), then, in the same run, installs the same data in the stock exim
container of tests/differential/exim_truth.py and times ``exim -bt`` on a sample
of addresses: one exim process per address, timed inside the container (the
per-address figure; the timer's own cost, running `true`, is reported beside it),
and all sample addresses in one process (amortised). Wall-clock and CPU time are both reported: CPU time
(user + system, exim's subprocesses included) is less sensitive to a busy machine.
Prints the figures and writes a JSON result under bench/results/.

    python bench/bench_aliases.py [--aliases 100000] [--runs 5] [--sample 200] [--seed 1]
                                  [--mix gnu,users] [--profile] [--no-exim] [--baseline REV]

Two site shapes (--mix): ``gnu`` (mostly off-site forwards, 1 user per 100 aliases)
and ``users`` (a large university's shape: 23 local users and about 2.9 :include:
lists per 100 aliases).  Each mix ends with a one-line summary, repeated at the end.

With --baseline, the model of an earlier commit (its plugins/module_utils, taken
from git) is timed in the same process, its runs alternating with this one's, and
its results are compared with this model's.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "differential"))
sys.path.insert(0, str(REPO / ".cache" / "collections"))

import exim_truth  # noqa: E402

DOMAINS = list(exim_truth.LOCAL_DOMAINS)
OFFSITE = [
    "example.org", "example.com", "example.net", "mail.example.org", "users.example.net",
    "cs.uni.example.edu", "home.example.net", "pobox.example.com", "Example.ORG",
]  # fmt: skip
SYLLABLES = ("ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "we", "xa", "yo", "ze",
             "ban", "cor", "dal", "fen", "gim", "hul", "jor")  # fmt: skip


def _name(rng: random.Random, used: set[str]) -> str:
    while True:
        name = "".join(rng.choice(SYLLABLES) for _n in range(rng.randint(2, 4)))
        name += rng.choice(["", "", ".", "-", "_"]) + rng.choice(SYLLABLES)
        if name not in used:
            used.add(name)
            return name


class _Site:
    """A synthetic site being built: users first, then alias lines in order."""

    def __init__(self, rng: random.Random, n_users: int, procmail: float, forward: float, title: str) -> None:
        # a user has a .procmailrc when a draw is below ``procmail``, else a .forward below ``forward``
        self.rng = rng
        self.used: set[str] = set()
        self.users = {}
        for _n in range(n_users):
            flags = rng.random()
            name = _name(rng, self.used)
            self.users[name] = {"procmail": flags < procmail, "forward": procmail <= flags < forward}
        self.user_list = sorted(self.users)
        self.lines = [title]
        self.includes: dict[str, str] = {}
        self.keys: list[str] = []

    def draws(self, n_aliases: int):
        """(roll, new key name) until the site has ``n_aliases`` keys."""
        while len(self.keys) < n_aliases:
            roll = self.rng.random()
            yield roll, _name(self.rng, self.used)

    def offsite(self, local: str) -> str:
        return f"{local}@{self.rng.choice(OFFSITE)}"

    def add(self, key: str, value: str) -> None:
        self.lines.append(f"{key}: {value}")
        self.keys.append(key)

    def members(self, low: int, high: int) -> list[str]:
        """Between ``low`` and ``high`` off-site addresses of new names."""
        return [self.offsite(_name(self.rng, self.used)) for _n in range(self.rng.randint(low, high))]

    def trolls(self, key: str, low: int, high: int, n_users: int) -> None:
        """A list split trolls-style: members, users and an archive alias."""
        members = self.members(low, high) + self.rng.sample(self.user_list, n_users)
        self.add(key, ", ".join([*members, f"{key}-archive"]))
        self.add(f"{key}-archive", f"/com/archive/{key}")

    def mixed(self, key: str, high: int) -> None:
        """A list of off-site members and an archive file (punted whole)."""
        self.add(key, ", ".join([*self.members(3, high), f"/com/archive/{key}"]))

    def result(self) -> dict:
        return {"aliases": "\n".join(self.lines) + "\n", "includes": self.includes, "users": self.users,
                "keys": self.keys}  # fmt: skip


def generate(n_aliases: int, seed: int) -> dict:
    """Build a synthetic site: {"aliases": text, "includes": {path: text}, "users": {...}}.

    Mix (by share of keys): plain off-site forwards 70 %, two off-site forwards 5 %,
    local users and keep-a-copy 8 %, mailman list addresses (pipes) 6 %, lists
    split trolls-style (members + an archive alias) 3 %, mixed lists with a file 1 %,
    :include: lists 2 %, nested aliases (chains of 2-5) 4 %, :fail: / :blackhole: 1 %.
    """
    rng = random.Random(seed)
    title = f"# synthetic alias file, {n_aliases} keys, seed {seed}"
    site = _Site(rng, max(50, n_aliases // 100), 0.1, 0.15, title)
    used, user_list, includes, offsite, add = site.used, site.user_list, site.includes, site.offsite, site.add
    for roll, key in site.draws(n_aliases):
        if roll < 0.70:
            add(key, offsite(key))
        elif roll < 0.75:
            add(key, f"{offsite(key)}, {offsite(key + '.alt')}")
        elif roll < 0.83:
            user = rng.choice(user_list)
            add(key, rng.choice([user, f"\\{user}", f"{user}, {offsite(key)}"]))
        elif roll < 0.89:
            for suffix in ("", "-request", "-owner", "-bounces"):
                action = {"": "post", "-request": "request", "-owner": "owner", "-bounces": "bounces"}[suffix]
                add(key + suffix, f'"|/var/lib/mailman/mail/mailman {action} {key}"')
        elif roll < 0.92:
            site.trolls(key, 3, 12, 2)
        elif roll < 0.93:
            site.mixed(key, 8)
        elif roll < 0.95:
            path = f"{exim_truth.INCLUDE_DIR}/lists/{key}"
            members = [offsite(_name(rng, used)) for _n in range(rng.randint(2, 20))]
            members += rng.sample(user_list, rng.randint(0, 2))
            if rng.random() < 0.2:
                members.append(f"/com/archive/{key}")
            includes[path] = "\n".join(members) + "\n"
            add(key, f":include:{path}")
        elif roll < 0.99:
            depth = rng.randint(2, 5)
            chain = [key] + [_name(rng, used) for _n in range(depth - 1)]
            for here, there in itertools.pairwise(chain):
                add(here, f"{there}, {offsite(here)}" if rng.random() < 0.3 else there)
            add(chain[-1], offsite(chain[-1]))
        else:
            add(key, rng.choice([":fail: 550 5.1.1 gone", ":blackhole:", ":defer: moving"]))
    return site.result()


def generate_users(n_aliases: int, seed: int) -> dict:
    """A users-heavy site (a large university's shape): about 23 local users and 2.9
    :include: lists per 100 aliases.

    Mix (by share of keys): name aliases of a local user (``first.last: user``) 22 %,
    keep-a-copy aliases (``\\user, user@off.site``) 4 %, plain off-site forwards 45 %,
    two off-site forwards 5 %, :include: lists of users and forwards 3.2 %, aliases of
    several users 5.7 %, mailman pipes 5 %, lists split trolls-style 3 %, nested aliases
    (chains of 2-4) 5 %, mixed lists with a file 1 %, :fail: / :blackhole: / :defer: 1 %.
    """
    rng = random.Random(seed)
    site = _Site(rng, n_aliases * 23 // 100, 0.08, 0.12,
                 f"# synthetic users-heavy alias file, {n_aliases} keys, seed {seed}")  # fmt: skip
    used, user_list, includes, offsite, add = site.used, site.user_list, site.includes, site.offsite, site.add
    for roll, key in site.draws(n_aliases):
        if roll < 0.22:
            add(key, rng.choice(user_list))
        elif roll < 0.26:
            user = rng.choice(user_list)
            add(key, f"\\{user}, {offsite(user)}")
        elif roll < 0.71:
            add(key, offsite(key))
        elif roll < 0.76:
            add(key, f"{offsite(key)}, {offsite(key + '.alt')}")
        elif roll < 0.792:
            path = f"{exim_truth.INCLUDE_DIR}/lists/{key}"
            members = rng.sample(user_list, rng.randint(3, 30))
            members += [offsite(_name(rng, used)) for _n in range(rng.randint(0, 10))]
            if rng.random() < 0.1:
                members.append(f"/com/archive/{key}")
            rng.shuffle(members)
            includes[path] = "\n".join(members) + "\n"
            add(key, f":include:{path}")
        elif roll < 0.849:
            add(key, ", ".join(rng.sample(user_list, rng.randint(2, 6))))
        elif roll < 0.899:
            add(key, f'"|/var/lib/mailman/mail/mailman post {key}"')
        elif roll < 0.929:
            site.trolls(key, 2, 8, 3)
        elif roll < 0.979:
            depth = rng.randint(2, 4)
            chain = [key] + [_name(rng, used) for _n in range(depth - 1)]
            for here, there in itertools.pairwise(chain):
                add(here, there)
            add(chain[-1], rng.choice([offsite(chain[-1]), rng.choice(user_list)]))
        elif roll < 0.989:
            site.mixed(key, 8)
        else:
            add(key, rng.choice([":fail: 550 5.1.1 gone", ":blackhole:", ":defer: moving"]))
    return site.result()


MIXES = {"gnu": generate, "users": generate_users}


def profile_model(site: dict) -> None:
    import cProfile
    import pstats

    from ansible_collections.smartmx.exim.plugins.module_utils import _aliases

    prof = cProfile.Profile()
    prof.enable()
    _run(_aliases, site)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def baseline_model(rev: str, into: Path):
    """The alias model (module _aliases) of commit ``rev``, imported from a copy of its
    plugins/module_utils under ``into`` as the package ``smartmx_baseline``."""
    import importlib

    names = _git("ls-tree", "--name-only", f"{rev}:plugins/module_utils").split()
    pkg = into / "smartmx_baseline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    for name in names:
        if name.endswith(".py"):
            (pkg / name).write_text(_git("show", f"{rev}:plugins/module_utils/{name}"), encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module("smartmx_baseline._aliases")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def _run(model, site: dict) -> tuple[dict, dict]:
    parsed = model.parse_aliases(site["aliases"], source="bench")
    table = model.secondary_routes(
        parsed, DOMAINS, includes=site["includes"], users=site["users"], pfr_strategy="patch", source="bench"
    )
    return parsed, table


def time_model(site: dict, runs: int, models: dict) -> dict:
    """Wall-clock and CPU time of parse_aliases + secondary_routes of each model
    (name -> module), ``runs`` times each; the models take turns, in alternating order.
    Every timed run starts with no results alive; the outputs returned come from
    one more, untimed run of each model."""
    times = {name: {"total": [], "parse": [], "route": [], "cpu": []} for name in models}
    order = list(models)
    for run in range(runs):
        for name in order if run % 2 == 0 else order[::-1]:
            model = models[name]
            gc.collect()
            c0 = time.process_time()
            t0 = time.perf_counter()
            parsed = model.parse_aliases(site["aliases"], source="bench")
            t1 = time.perf_counter()
            table = model.secondary_routes(
                parsed, DOMAINS, includes=site["includes"], users=site["users"], pfr_strategy="patch",
                source="bench",
            )  # fmt: skip
            t2 = time.perf_counter()
            cpu = time.process_time() - c0
            # Free the results before the next run: their deallocation is not part of
            # parsing and routing, yet would otherwise fall inside a timed span.
            del parsed, table
            took = times[name]
            took["cpu"].append(cpu)
            took["parse"].append(t1 - t0)
            took["route"].append(t2 - t1)
            took["total"].append(t2 - t0)
    summaries, tables = {}, {}
    for name, took in times.items():
        parsed, tables[name] = _run(models[name], site)
        summaries[name] = {"runs": runs, "routes": len(tables[name]["routes"]),
                           "total_s": _summary(took["total"]), "cpu_s": _summary(took["cpu"]),
                           "parse_s": _summary(took["parse"]), "route_s": _summary(took["route"]),
                           "errors": len(parsed.get("errors", []))}  # fmt: skip
    return summaries, tables


def same_output(table: dict, other: dict) -> dict:
    """Where two routing tables differ: routes compared as dicts, the lists as sets."""
    routes = [k for k in table["routes"].keys() | other["routes"].keys()
              if table["routes"].get(k) != other["routes"].get(k)]  # fmt: skip
    lists = [key for key in ("punt", "valid", "users") if set(table[key]) != set(other[key])]
    findings = {json.dumps(f, sort_keys=True) for f in table["findings"]}
    other_findings = {json.dumps(f, sort_keys=True) for f in other["findings"]}
    return {"routes_differ": sorted(routes)[:20], "n_routes_differ": len(routes), "lists_differ": lists,
            "findings_differ": len(findings ^ other_findings)}  # fmt: skip


# Runs inside the container: wall-clock and CPU time (user + system of exim and the
# processes it waits for) of each command; argv: mode ("each" or "all"), then the command
# words up to "--", then the addresses.
TIMER = """
import json, resource, subprocess, sys, time
mode, args = sys.argv[1], sys.argv[2:]
cut = args.index("--")
command, addresses = args[:cut], args[cut + 1:]
runs = [[a] for a in addresses] if mode == "each" else [addresses]
out = []
for extra in runs:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(command + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.append([t1 - t0, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime])
print(json.dumps(out))
"""


def _timed(mode: str, command: list[str], addresses: list[str]) -> list[tuple[float, float]]:
    res = exim_truth._run(["docker", "exec", exim_truth.CONTAINER, "python3", "-c", TIMER, mode,
                           *command, "--", *addresses], timeout=3600)  # fmt: skip
    return [tuple(x) for x in json.loads(res.stdout)]


def time_exim(site: dict, sample: list[str]) -> dict:
    """Install the site in the stock exim container and time exim -bt on the sample."""
    with tempfile.TemporaryDirectory(prefix="smartmx-bench-") as tmp:
        root = Path(tmp)
        (root / "aliases").mkdir()
        (root / "aliases" / "bench").write_text(site["aliases"], encoding="utf-8")
        for path, text in site["includes"].items():
            dest = root / "include" / Path(path).relative_to(exim_truth.INCLUDE_DIR)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
        (root / "users").write_text("".join(f"{u}\n" for u in site["users"]), encoding="utf-8")
        with exim_truth._locked():
            exim_truth.ensure_container()
            exim_truth.install_corpus(root, site["users"])
            cfg = f"{exim_truth.REMOTE_CFG}/bench.conf"
            addresses = [f"{exim_truth.quote_local_part(lp)}@{DOMAINS[0]}" for lp in sample]
            exim = ["exim", "-C", cfg, "-bt"]
            # the timer's own cost: the same loop running `true`
            baseline = _timed("each", ["true"], addresses)
            each = _timed("each", exim, addresses)
            (batch,) = _timed("all", exim, addresses)
            # what exim made of them, to check the model on the same data
            checked = exim_truth.bt(cfg, sample)
    if len(each) != len(sample):
        raise exim_truth.HarnessError(f"timed {len(each)} of {len(sample)} addresses")
    bad = [lp for lp, leaves in checked.items() if not leaves]
    if bad:
        raise exim_truth.HarnessError(f"exim gave no leaves for {bad}")
    return checked, {
        "sample": len(sample),
        "timer_overhead_s": _summary([w for w, _c in baseline]),
        "per_address_s": _summary([w for w, _c in each]),
        "per_address_cpu_s": _summary([c for _w, c in each]),
        "batch_s": batch[0],
        "batch_cpu_s": batch[1],
        "batch_per_address_s": batch[0] / len(sample),
        "batch_per_address_cpu_s": batch[1] / len(sample),
    }


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    exim = subprocess.run(["docker", "exec", exim_truth.CONTAINER, "exim", "-bV"], capture_output=True,
                          text=True, check=False).stdout.splitlines()[:1]  # fmt: skip
    return {"host": platform.node(), "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "exim": exim[0] if exim else "unknown"}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aliases", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", default="gnu,users", help="comma-separated site shapes: gnu, users")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--profile", action="store_true", help="profile one model run")
    ap.add_argument("--no-exim", action="store_true", help="time the model only (no ratio, no result file)")
    ap.add_argument("--baseline", metavar="REV", help="also time the model of this commit, in the same runs")
    args = ap.parse_args()
    mixes = [m for m in args.mix.split(",") if m]
    unknown = [m for m in mixes if m not in MIXES]
    if unknown:
        ap.error(f"unknown mix {', '.join(unknown)} (known: {', '.join(MIXES)})")
    summaries = [run_mix(mix, args) for mix in mixes]
    print(f"\n== summary (median of {args.runs} runs; CPU = process time of this process) ==")
    for line in summaries:
        print(line)
    return 0


def run_mix(mix: str, args: argparse.Namespace) -> str:
    """Benchmark one site shape; return its one-line summary."""
    print(f"\n== mix {mix} ==")
    load_start = os.getloadavg()
    c_start = time.process_time()
    t0 = time.perf_counter()
    site = MIXES[mix](args.aliases, args.seed)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(site['keys'])} aliases, {len(site['includes'])} include files, "
          f"{len(site['users'])} users, {len(site['aliases']) / 1e6:.1f} MB in {gen_s:.1f} s")  # fmt: skip

    from ansible_collections.smartmx.exim.plugins.module_utils import _aliases as current

    models = {"model": current}
    with tempfile.TemporaryDirectory(prefix="smartmx-baseline-") as tmp:
        if args.baseline:
            models["baseline"] = baseline_model(args.baseline, Path(tmp))
        summaries, tables = time_model(site, args.runs, models)
    model, routes = summaries["model"], tables["model"]["routes"]
    baseline = None
    if args.baseline:
        baseline = summaries["baseline"]
        baseline["rev"] = _git("rev-parse", "--short", args.baseline).strip()
        baseline["output"] = same_output(tables["model"], tables["baseline"])
        b_med = baseline["total_s"]["median"]
        print(f"baseline {baseline['rev']}, same runs: median {b_med:.3f} s "
              f"(min {baseline['total_s']['min']:.3f}, max {baseline['total_s']['max']:.3f}); "
              f"parse {baseline['parse_s']['median']:.3f} s, "
              f"route {baseline['route_s']['median']:.3f} s; CPU {baseline['cpu_s']['median']:.3f} s; "
              f"this model takes {model['total_s']['median'] / b_med:.2f} of its time "
              f"({model['cpu_s']['median'] / baseline['cpu_s']['median']:.2f} of its CPU time); output: "
              f"{baseline['output']['n_routes_differ']} routes differ, lists differing: "
              f"{', '.join(baseline['output']['lists_differ']) or 'none'}, "
              f"{baseline['output']['findings_differ']} findings differ")  # fmt: skip
    del tables
    n = len(site["keys"])
    per_alias = model["total_s"]["median"] / n
    per_alias_cpu = model["cpu_s"]["median"] / n
    print(f"parse + route, {model['runs']} runs: median {model['total_s']['median']:.3f} s "
          f"(min {model['total_s']['min']:.3f}, max {model['total_s']['max']:.3f}); "
          f"parse {model['parse_s']['median']:.3f} s, route {model['route_s']['median']:.3f} s; "
          f"CPU {model['cpu_s']['median']:.3f} s (min {model['cpu_s']['min']:.3f}); "
          f"{per_alias * 1e6:.1f} us per alias; {model['routes']} routes")  # fmt: skip
    target = model["total_s"]["median"] <= 2.0 if n >= 100_000 else None
    verdict = {True: "met", False: "NOT met", None: "not judged (fewer than 100k aliases)"}[target]
    summary = (f"mix {mix}: {n} aliases, {len(site['users'])} users, {len(site['includes'])} include files, "
               f"{model['routes']} routes: median {model['total_s']['median']:.3f} s wall "
               f"(parse {model['parse_s']['median']:.3f}, route {model['route_s']['median']:.3f}), "
               f"CPU {model['cpu_s']['median']:.3f} s; <= 2 s: {verdict}")  # fmt: skip

    if args.profile:
        profile_model(site)
    if args.no_exim:
        load_end = os.getloadavg()
        return summary + f"; load {load_start[0]:.1f} -> {load_end[0]:.1f} (1-min avg, {os.cpu_count()} CPUs)"

    rng = random.Random(args.seed + 1)
    sample = rng.sample(site["keys"], min(args.sample, n))
    exim_says, exim = time_exim(site, sample)
    differ = sorted(lp for lp in sample if routes.get(lp, {}).get("leaves") != exim_says[lp])
    exim["model_agrees"] = len(sample) - len(differ)
    exim["model_differs_on"] = differ[:20]
    print(f"the model's leaves equal exim's for {exim['model_agrees']} of {len(sample)} sampled aliases"
          + (f"; differ: {', '.join(differ[:5])}" if differ else ""))  # fmt: skip
    ms = {k: v * 1e3 for k, v in exim["per_address_s"].items()}
    cpu_ms = exim["per_address_cpu_s"]["median"] * 1e3
    print(f"stock exim -bt, {exim['sample']} addresses, one exim process each: median {ms['median']:.2f} ms "
          f"(min {ms['min']:.2f}, max {ms['max']:.2f}; the timer alone: "
          f"{exim['timer_overhead_s']['median'] * 1e3:.2f} ms), CPU median {cpu_ms:.2f} ms")  # fmt: skip
    print(f"stock exim -bt, all {exim['sample']} in one process: {exim['batch_per_address_s'] * 1e3:.2f} ms "
          f"per address, CPU {exim['batch_per_address_cpu_s'] * 1e3:.2f} ms")  # fmt: skip

    ratios = {
        "per_address": exim["per_address_s"]["median"] / per_alias,
        "per_address_cpu": exim["per_address_cpu_s"]["median"] / per_alias_cpu,
        "batched": exim["batch_per_address_s"] / per_alias,
        "batched_cpu": exim["batch_per_address_cpu_s"] / per_alias_cpu,
    }
    print(f"speed ratio per address: {ratios['per_address']:.0f}x wall, {ratios['per_address_cpu']:.0f}x CPU "
          f"(one exim process per address); {ratios['batched']:.0f}x wall, {ratios['batched_cpu']:.0f}x CPU "
          f"(one exim process for the sample)")  # fmt: skip
    print(f"target <= 2 s median for 100k: {verdict}")
    load_end = os.getloadavg()
    summary += (f"; exim -bt {ms['median']:.2f} ms/address, same run "
                f"({ratios['per_address']:.0f}x wall, {ratios['per_address_cpu']:.0f}x CPU); "
                f"leaves agree {exim['model_agrees']}/{len(sample)}; load {load_start[0]:.1f} -> "
                f"{load_end[0]:.1f} (1-min avg, {os.cpu_count()} CPUs)")  # fmt: skip

    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "mix": mix,
        "machine": machine(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "bench_cpu_s": time.process_time() - c_start,
        "aliases": len(site["keys"]),
        "include_files": len(site["includes"]),
        "users": len(site["users"]),
        "seed": args.seed,
        "model": model,
        "model_rev": _git("rev-parse", "--short", "HEAD").strip()
        + ("+changes" if _git("status", "--porcelain", "plugins/module_utils").strip() else ""),
        "baseline": baseline,
        "model_per_alias_s": per_alias,
        "model_per_alias_cpu_s": per_alias_cpu,
        "exim": exim,
        "ratios": ratios,
        "target_2s_met": target,
        "summary": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"bench_aliases-{mix}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"result: {out}")
    return summary


if __name__ == "__main__":
    sys.exit(main())

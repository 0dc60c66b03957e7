# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The drift check's comparison: what the secondaries serve against what the controller expects.

Private to smartmx.exim, pure (no file system, no clock).  ``drift_report(data,
**options)`` takes the results of smartmx.exim.mx_probe per host and what the
controller computed (the files alias_sync would push now, the rendered
configurations, the predicted routing), and returns per secondary one verdict
per check, each with a ``status`` (ok, drift, or skipped when a check it
depends on drifted), a one-line ``detail`` and a ``fix``:

``data``, ``generation_intact``, ``freshness``, ``schedule``, ``config``,
``daemon_config``, ``policy``, ``build``, ``routing``; ``schedule`` is judged
on the host that runs the sync (``schedule_host``) when one is named, and the
primary gets the check ``aliases`` (its alias data reads without refusals or
errors) when the input has ``expected.aliases``.

``expected_files(generation)`` gives the manifest files alias_sync would write
for a generation's texts, without writing anything.

``routing_plan(table, domain, size, seed)`` picks the addresses to route and
predicts, from a secondary_routes result, what exim must answer for each.
"""

from __future__ import absolute_import, division, print_function

import hashlib
from collections.abc import Mapping

from ._alias_address import ascii_lower, split_address
from ._alias_sync import Refusal, check_text, files_digest, gather, manifest_files
from ._debversion import VersionError, compare, strip_suffix

CHECKS = (
    "data",
    "generation_intact",
    "freshness",
    "schedule",
    "config",
    "daemon_config",
    "policy",
    "build",
    "routing",
)
DEFAULTS = {
    "primary": None,
    "secondaries": None,
    "max_age": 900,
    "pfr_strategy": "patch",
    "local_suffix": "+smartmx1",
    "security_lag_allowed_versions": [],
    "schedule_host": None,
    "shown": 5,
}
# Checks whose failure makes the routing comparison meaningless: exim then routes
# other data, another configuration, or cannot run at all.
ROUTING_NEEDS = ("data", "generation_intact", "config", "build")
PRIMARY_CHECKS = ("aliases",)
# Findings that mean a line of the alias data does not parse (exim defers or fails the
# address): the check "aliases" fails on them. Other findings (a target that bounces,
# a mixed alias) are the data as written, the same on every MX: named, not drift.
PARSE_ERRORS = frozenset(
    (
        "syntax-error",
        "missing-colon",
        "dropped-continuation",
        "include-error",
        "include-loop",
        "too-deep",
        "too-complex",
    )
)
RUNNER_CHECKS = ("schedule",)
# Exit codes of the drift check (bits, as Puppet's --detailed-exitcodes): drift found,
# a host not checked.
EXIT_DRIFT = 2
EXIT_UNCHECKED = 4
RESULTS = ("remote", "primary", "mixed", "refused", "defer", "discard")
# a local part that no alias file has: the model says refused
UNKNOWN_LOCAL_PART = "smartmx-drift-no-such-address"
SYNC_FIX = "run the sync (ansible-playbook smartmx.exim.sync, or systemctl start smartmx-alias-sync.service)"


class DriftError(ValueError):
    """Input that is not what the drift report reads."""


# --------------------------------------------------------------------------- routing model


def top_address(key, domain):
    """``key@domain``, the local part quoted when it is not a plain dot-atom (as exim reads it)."""
    from ._aliases import top_address as _top

    return _top(key, domain)


def prediction(table, address):
    """What the secondary's exim must answer for ``address`` (in the first domain of ``table``)."""
    routes = table.get("routes") or {}
    key = split_address(address)[0] if "@" in address else address
    route = routes.get(key) or routes.get(ascii_lower(key))
    if route is None:
        if (table.get("rcpt") or {}).get(address) == "defer":
            return {"result": "defer"}
        return {"result": "refused"}
    action = route.get("action")
    deliver = sorted(set(route.get("deliver") or []))
    punt = sorted(set(route.get("punt") or []))
    if action == "fail":
        return {"result": "refused"}
    if action == "defer":
        return {"result": "defer"}
    if action == "blackhole":
        return {"result": "discard"}
    if action == "punt":
        return {"result": "primary", "primary": punt or [address]}
    if deliver and punt:
        return {"result": "mixed", "to": deliver, "primary": punt}
    if punt:
        return {"result": "primary", "primary": punt}
    if deliver:
        return {"result": "remote", "to": deliver}
    return {"result": "refused"}


def _rank(seed, item):
    return hashlib.sha256(f"{seed}\0{item}".encode("utf-8", "surrogatepass")).hexdigest()


def routing_sample(addresses, size, seed=0, priority=(), priority_cap=None):
    """A deterministic sample of at most ``size`` addresses, sorted.

    All of them when there are no more than ``size``.  Otherwise the
    ``priority`` addresses first (up to ``priority_cap``, default half the
    size), then the rest; within each group those with the smallest
    sha256(seed, address) are taken, so the same input and seed give the
    same sample and a changed seed another one.
    """
    pool = sorted(set(addresses))
    size = max(0, int(size))
    if len(pool) <= size:
        return pool
    cap = size // 2 if priority_cap is None else min(int(priority_cap), size)
    wanted = set(priority) & set(pool)
    first = sorted(wanted, key=lambda a: _rank(seed, a))[:cap]
    taken = set(first)
    rest = sorted((a for a in pool if a not in taken), key=lambda a: _rank(seed, a))
    return sorted(first + rest[: size - len(first)])


def routing_plan(table, domain, size=200, seed=0, priority_cap=None):
    """``{"addresses": [...], "expected": {address: prediction}}`` for mx_probe and drift_report.

    The candidates are every local part of ``table["routes"]`` in ``domain``
    (the first domain given to secondary_routes: its routes are computed
    there) and one address no alias file has; addresses that go to the
    primary, in part or whole, and those that defer are sampled first.
    """
    if not isinstance(table, Mapping) or not isinstance(table.get("routes"), Mapping):
        raise DriftError("the table must be a secondary_routes result (with routes)")
    if not isinstance(domain, str) or not domain:
        raise DriftError("domain must be the first local domain")
    candidates = [top_address(k, domain) for k in table["routes"]]
    unknown = top_address(UNKNOWN_LOCAL_PART, domain)
    candidates = [a for a in candidates if a != unknown]
    predicted = {a: prediction(table, a) for a in candidates}
    priority = [a for a, p in predicted.items() if p["result"] in ("primary", "mixed", "defer")]
    sample = routing_sample(candidates, max(0, int(size) - 1), seed, priority, priority_cap)
    sample.append(unknown)
    predicted[unknown] = {"result": "refused"}
    return {"addresses": sample, "expected": {a: predicted[a] for a in sample}}


def _is_plan(value):
    return isinstance(value, Mapping) and isinstance(value.get("expected"), Mapping)


def _norm_remote(addresses):
    out = set()
    for a in addresses or []:
        local, sep, dom = a.rpartition("@")
        out.add(f"{local}@{ascii_lower(dom)}" if sep else a)
    return sorted(out)


def _norm_primary(addresses):
    return sorted({ascii_lower(a) for a in addresses or []})


def routing_matches(expected, got):
    """Whether exim's answer ``got`` is the predicted ``expected``."""
    if not isinstance(got, Mapping) or got.get("result") != expected.get("result"):
        return False
    if expected["result"] in ("remote", "mixed") and _norm_remote(got.get("to")) != _norm_remote(
        expected.get("to")
    ):
        return False
    if expected["result"] in ("primary", "mixed") and expected.get("primary") is not None:
        return _norm_primary(got.get("primary")) == _norm_primary(expected.get("primary"))
    return True


def _shown_routing(r):
    if not isinstance(r, Mapping):
        return "nothing"
    text = r.get("result", "?")
    if r.get("to"):
        text += " to " + ",".join(r["to"])
    if r.get("primary"):
        text += " primary " + ",".join(r["primary"])
    if r.get("message"):
        text += f" ({r['message']})"
    return text


# --------------------------------------------------------------------------- the checks


def _ok(detail):
    return {"ok": True, "status": "ok", "detail": detail, "fix": ""}


def _bad(detail, fix):
    return {"ok": False, "status": "drift", "detail": detail, "fix": fix}


def _skipped(detail):
    return {"ok": None, "status": "skipped", "detail": detail, "fix": ""}


def expected_files(generation):
    """The manifest files (``{relpath: {"sha256", "size"}}``) alias_sync writes for these texts.

    ``generation`` holds ``aliases`` (text), ``includes`` (path to text),
    ``files`` (list file name to text) and ``alias_path``, as the module
    alias_sync takes them; the digests are of the pushed texts, as in the
    secondary's ``MANIFEST.json``.
    """
    if not isinstance(generation, Mapping) or not isinstance(generation.get("aliases"), str):
        raise DriftError("expected.generation needs aliases (text), includes and files")
    try:
        texts = gather(
            generation["aliases"],
            generation.get("includes") or {},
            generation.get("files") or {},
            generation.get("alias_path") or "aliases",
        )
        blobs = {rel: check_text(text, shown) for rel, (text, shown) in texts.items()}
    except Refusal as exc:
        raise DriftError(f"the primary's data would be refused by alias_sync: {exc}") from exc
    return manifest_files(blobs)


def _short(items, shown):
    items = list(items)
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(str(i) for i in items[:shown]) + more


def _per_host(value, host):
    if isinstance(value, Mapping):
        return value.get(host)
    return value


def _expected_files(files):
    out = {}
    for rel, value in (files or {}).items():
        sha = value.get("sha256") if isinstance(value, Mapping) else value
        if not isinstance(sha, str):
            raise DriftError(f"expected.files: {rel!r} has no sha256")
        out[rel] = {"sha256": sha}
    return out


def check_data(host, probe, expected, opts):
    files = expected.get("files")
    if files is None and expected.get("generation") is not None:
        files = expected_files(expected["generation"])
        expected["files"] = files
    if not isinstance(files, Mapping):
        return _bad(
            "nothing to compare with: expected.files is not given", "pass the files alias_sync pushes"
        )
    want = _expected_files(files)
    digest = files_digest(want)
    g = probe.get("generation")
    if not isinstance(g, Mapping):
        return _bad("the probe did not read the generation", "probe with section generation")
    if not g.get("files_digest"):
        return _bad(f"no current generation to compare: {g.get('error') or 'no manifest'}", SYNC_FIX)
    if g["files_digest"] == digest:
        return _ok(f"generation {g.get('current')} holds the primary's data (files digest {digest[:12]})")
    have = ((g.get("manifest") or {}).get("files")) or {}
    differ = sorted(
        r
        for r in set(have) | set(want)
        if (have.get(r) or {}).get("sha256") != (want.get(r) or {}).get("sha256")
    )
    return _bad(
        f"generation {g.get('current')} has files digest {g['files_digest'][:12]}, the primary's data "
        f"{digest[:12]}; differing: {_short(differ, opts['shown']) or 'none listed'}",
        SYNC_FIX + "; if it refuses, read its reason (docs/alias_sync.md, Refusals)",
    )


def check_generation_intact(host, probe, expected, opts):
    g = probe.get("generation")
    if not isinstance(g, Mapping):
        return _bad("the probe did not read the generation", "probe with section generation")
    if g.get("intact"):
        return _ok(f"every file of generation {g.get('current')} matches its manifest")
    if g.get("error") and not (g.get("mismatched") or g.get("missing") or g.get("extra")):
        return _bad(f"generation unreadable: {g['error']}", SYNC_FIX)
    parts = []
    for key in ("mismatched", "missing", "extra"):
        if g.get(key):
            parts.append(f"{key}: {_short(g[key], opts['shown'])}")
    if g.get("error"):
        parts.append(g["error"])
    return _bad(
        f"generation {g.get('current')} was changed on disk after the push ({'; '.join(parts)})",
        SYNC_FIX + " (it writes the damaged files anew); then find what writes below the base directory",
    )


def check_freshness(host, probe, expected, opts, now):
    hb = probe.get("heartbeat")
    if not isinstance(hb, Mapping):
        return _bad("the probe did not read the heartbeat", "probe with section heartbeat")
    if not hb.get("exists") or hb.get("mtime") is None:
        return _bad(f"no heartbeat: {hb.get('error') or 'missing'}", SYNC_FIX)
    clock = probe.get("time", now)
    if clock is None:
        return _bad("no time to compare the heartbeat with", "pass now")
    age = float(clock) - float(hb["mtime"])
    limit = float(opts["max_age"])
    if age <= limit:
        return _ok(f"heartbeat {age:.0f} s old (at most {limit:g} s)")
    return _bad(
        f"heartbeat {age:.0f} s old, more than {limit:g} s: pushes stopped arriving",
        "look at the sync's last runs (systemctl status smartmx-alias-sync.service, journalctl -u "
        "smartmx-alias-sync.service) and " + SYNC_FIX,
    )


def _unit_problem(name, u):
    if not isinstance(u, Mapping):
        return f"{name}: not reported"
    if u.get("error"):
        return f"{name}: {u['error']}"
    if u.get("LoadState") != "loaded":
        return f"{name}: {u.get('LoadState') or 'not loaded'}"
    if name.endswith(".timer"):
        if u.get("ActiveState") != "active" or u.get("UnitFileState") != "enabled":
            return f"{name}: {u.get('ActiveState')}, {u.get('UnitFileState') or 'no unit file state'}"
    elif name.endswith(".path"):
        if u.get("ActiveState") != "active":
            return f"{name}: {u.get('ActiveState')}"
    elif name.endswith(".service") and u.get("Result") != "success":
        return f"{name}: last run {u.get('Result')} (status {u.get('ExecMainStatus')})"
    return None


def check_schedule(host, probe, expected, opts, probes):
    source = opts.get("schedule_host") or host
    p = probe if source == host else probes.get(source)
    if not isinstance(p, Mapping) or _probe_failed(p):
        return _bad(f"no probe of {source}, which runs the sync", f"make {source} reachable")
    units = p.get("units")
    if not units:
        return _ok(f"no units given for {source}")
    problems = [m for m in (_unit_problem(n, u) for n, u in sorted(units.items())) if m]
    if not problems:
        return _ok(f"{source}: {', '.join(sorted(units))} as they should be")
    return _bad(
        f"{source}: {'; '.join(problems)}",
        f"on {source}: systemctl enable --now the timer and path units; read journalctl -u of a failed "
        "service, fix it, and start it once",
    )


def check_config(host, probe, expected, opts):
    want = _per_host(expected.get("config_sha256"), host)
    c = probe.get("config")
    if not isinstance(c, Mapping):
        return _bad("the probe did not read the configuration", "probe with section config")
    if not want:
        return _bad(
            "nothing to compare with: expected.config_sha256 is not given", "pass the rendered sha256"
        )
    if not c.get("sha256"):
        return _bad(f"no configuration: {c.get('error') or 'missing'}", "apply the MX role (site.yml)")
    if c["sha256"] == want:
        return _ok(f"{c.get('path')} is the rendered configuration ({want[:12]})")
    return _bad(
        f"{c.get('path')} has sha256 {c['sha256'][:12]}, the rendered configuration {want[:12]}",
        "apply the MX role (ansible-playbook site.yml --limit " + host + "); a hand edit is lost then",
    )


def check_daemon_config(host, probe, expected, opts):
    c = probe.get("config")
    if not isinstance(c, Mapping):
        return _bad("the probe did not read the configuration", "probe with section config")
    count = c.get("daemon_count") or 0
    if count != 1:
        pids = [d.get("pid") for d in c.get("daemons") or []]
        return _bad(
            f"{count} exim daemons{' (pids ' + _short(pids, opts['shown']) + ')' if pids else ''}",
            "systemctl stop exim4, kill any exim4 -bd left, systemctl start exim4; check one daemon",
        )
    if c.get("daemon_older_than_config"):
        return _bad(
            f"daemon {c.get('daemon_pid')} started before {c.get('path')} last changed: it runs an older "
            "configuration",
            "systemctl restart exim4 (then check that one daemon is left)",
        )
    return _ok(f"one daemon (pid {c.get('daemon_pid')}), started after the configuration changed")


def check_policy(host, probe, expected, opts):
    policies = expected.get("policy_sha256")
    primary = opts.get("primary")
    if not isinstance(policies, Mapping) or not primary:
        return _bad("nothing to compare with: expected.policy_sha256 and primary are needed", "pass both")
    mine, theirs = policies.get(host), policies.get(primary)
    if not mine or not theirs:
        missing = host if not mine else primary
        return _bad(
            f"no policy digest for {missing}", "render both configurations with smartmx.exim.exim_policy"
        )
    if mine == theirs:
        return _ok(f"same SMTP policy as {primary} ({mine[:12]})")
    return _bad(
        f"policy {mine[:12]} differs from {primary}'s {theirs[:12]}: the MX answer differently",
        "set smartmx_policy once for all MX (group_vars/all) and apply site.yml to both",
    )


def check_build(host, probe, expected, opts):
    e = probe.get("exim")
    if not isinstance(e, Mapping):
        return _bad("the probe did not read the exim build", "probe with section exim")
    strategy = _per_host(expected.get("pfr_strategy"), host) or opts["pfr_strategy"]
    suffix = e.get("local_suffix") or opts["local_suffix"]
    version = e.get("installed_version")
    if not version:
        return _bad(
            f"exim4-base is not installed ({'; '.join(e.get('errors') or []) or 'no version'})",
            "apply the MX role (site.yml)",
        )
    problems, fixes = [], []
    if strategy == "patch" and not e.get("local_build"):
        problems.append(f"pfr strategy patch, but {version} is not the local build (no {suffix})")
        fixes.append("apply role exim_build (site.yml), or set smartmx_pfr_strategy: precompute")
    base = strip_suffix(version, suffix)[0]
    newest = e.get("apt_newest")
    allowed = list(opts["security_lag_allowed_versions"] or [])
    allowed += list(_per_host(expected.get("security_lag_allowed_versions"), host) or [])
    waiting = ""
    if newest:
        try:
            older = compare(base, newest) < 0
        except VersionError:
            older = True
        if older and newest not in allowed:
            problems.append(f"{base} is older than {newest}, which apt offers")
            fixes.append(
                "rebuild on the new source (role exim_build) or upgrade; while the source is not at hand, "
                f"list {newest} in security_lag_allowed_versions"
            )
        elif older:
            waiting = f"; {newest} is offered and allowed to wait (security_lag_allowed_versions)"
    if problems:
        return _bad("; ".join(problems), "; ".join(fixes))
    return _ok(f"{version} ({strategy}){waiting or ', nothing newer offered'}")


def check_routing(host, probe, expected, opts, blocked=()):
    if blocked:
        return _skipped(f"not compared: exim routes with what {', '.join(blocked)} found drifted")
    want = expected.get("routing")
    if isinstance(want, Mapping) and host in want and isinstance(want[host], Mapping) and not _is_plan(want):
        want = want[host]
    if want and isinstance(want, Mapping) and isinstance(want.get("expected"), Mapping):
        want = want["expected"]  # a routing_plan() result
    if not want:
        return _ok("no addresses sampled")
    got = probe.get("routing")
    if not isinstance(got, Mapping):
        return _bad("the probe did not route the sample", "probe with section routing and the addresses")
    wrong = []
    for address in sorted(want):
        if not routing_matches(want[address], got.get(address)):
            wrong.append(
                f"{address}: model {_shown_routing(want[address])}, exim {_shown_routing(got.get(address))}"
            )
    if not wrong:
        return _ok(f"{len(want)} addresses routed as the model predicts")
    return _bad(
        f"{len(wrong)} of {len(want)} addresses routed otherwise: {_short(wrong, opts['shown'])}",
        "if data is ok, compare the configuration (config) and the build (build); else " + SYNC_FIX,
    )


# --------------------------------------------------------------------------- the report


def _probe_failed(p):
    return not isinstance(p, Mapping) or p.get("failed") or p.get("unreachable") or p.get("skipped")


def _options(data, overrides):
    opts = dict(DEFAULTS)
    given = data.get("options") or {}
    if not isinstance(given, Mapping):
        raise DriftError("options must be a mapping")
    for source in (given, overrides):
        for key, value in source.items():
            if key not in DEFAULTS:
                raise DriftError(f"unknown option {key!r}; known: {', '.join(sorted(DEFAULTS))}")
            opts[key] = value
    if opts["pfr_strategy"] not in ("patch", "precompute"):
        raise DriftError(f"pfr_strategy must be patch or precompute, got {opts['pfr_strategy']!r}")
    try:
        opts["max_age"] = float(opts["max_age"])
    except (TypeError, ValueError) as exc:
        raise DriftError(f"max_age must be a number of seconds, got {opts['max_age']!r}") from exc
    return opts


def check_aliases(expected, opts):
    """The primary's alias data: read without refusals, every line parses (PARSE_ERRORS)."""
    a = expected.get("aliases")
    if not isinstance(a, Mapping):
        return _bad("nothing to judge: expected.aliases is not given", "pass the alias_sources result")
    refusals = list(a.get("refusals") or [])
    findings = [f for f in a.get("findings") or [] if isinstance(f, Mapping)]
    errors = [f for f in findings if f.get("severity") == "error" and f.get("code") in PARSE_ERRORS]

    def where(f):
        return f"{f.get('file')}:{f.get('line')}: {f.get('code')}: {f.get('message')}"

    if refusals:
        return _bad(
            f"refused, nothing can be pushed: {_short(refusals, opts['shown'])}",
            "fix the alias file at the line named (docs/alias_sync.md, Refusals), then " + SYNC_FIX,
        )
    if errors:
        return _bad(
            f"{len(errors)} line(s) that do not parse: {_short([where(f) for f in errors], opts['shown'])}",
            "fix the alias file at the lines named (docs/aliases.md, Findings); exim defers these addresses",
        )
    rest = len(findings)
    bad = sum(1 for f in findings if f.get("severity") == "error")
    shown = f"; {rest} finding(s) ({bad} error(s)), first: {where(findings[0])}" if rest else ""
    return _ok(f"{a.get('path') or 'the alias data'} reads cleanly{shown}")


def _summary_line(drift, unchecked, checked):
    if not drift and not unchecked:
        return f"no drift: {checked} secondar{'y' if checked == 1 else 'ies'} checked"
    parts = []
    if drift:
        parts.append(
            f"{len(drift)} drifted check(s): " + ", ".join(f"{d['host']} {d['check']}" for d in drift)
        )
    if unchecked:
        parts.append(f"unchecked: {', '.join(unchecked)}")
    head = "DRIFT" if drift else "NOT CHECKED"
    return f"{head} ({checked} secondar{'y' if checked == 1 else 'ies'} checked); " + "; ".join(parts)


def drift_report(data, **options):
    """The drift report (see the module docstring).

    ``{"hosts": {host: {"role", "checks"} or {"role", "unchecked"}}, "drift": [{host, check,
    detail, fix}], "unchecked": [hosts], "summary": text, "exit_code": 0/2/4/6}``.
    """
    if not isinstance(data, Mapping):
        raise DriftError("input must be a mapping with expected, probes and now")
    expected = dict(data.get("expected") or {})
    probes = data.get("probes") or {}
    if not isinstance(expected, Mapping) or not isinstance(probes, Mapping):
        raise DriftError("expected and probes must be mappings")
    opts = _options(data, options)
    now = data.get("now")
    primary, runner = opts["primary"], opts["schedule_host"]
    secondaries = opts["secondaries"]
    if secondaries is None:
        secondaries = sorted(h for h in probes if h not in (primary, runner))
    hosts, unchecked = {}, []
    if primary and expected.get("aliases") is not None:
        hosts[primary] = {"role": ["primary"], "checks": {"aliases": check_aliases(expected, opts)}}
    if runner:
        entry = hosts.setdefault(runner, {"role": [], "checks": {}})
        entry["role"].append("runner")
        p = probes.get(runner)
        if _probe_failed(p):
            entry["unchecked"] = _why(p)
            unchecked.append(runner)
        else:
            entry["checks"]["schedule"] = check_schedule(
                runner, p, expected, dict(opts, schedule_host=None), probes
            )
    for host in sorted(secondaries):
        p = probes.get(host)
        entry = hosts.setdefault(host, {"role": [], "checks": {}})
        entry["role"].append("secondary")
        if _probe_failed(p):
            entry["unchecked"] = _why(p)
            unchecked.append(host)
            continue
        checks = {
            "data": check_data(host, p, expected, opts),
            "generation_intact": check_generation_intact(host, p, expected, opts),
            "freshness": check_freshness(host, p, expected, opts, now),
        }
        if not runner:
            checks["schedule"] = check_schedule(host, p, expected, opts, probes)
        checks.update(
            config=check_config(host, p, expected, opts),
            daemon_config=check_daemon_config(host, p, expected, opts),
            policy=check_policy(host, p, expected, opts),
            build=check_build(host, p, expected, opts),
        )
        entry["seen"] = _seen(p)
        blocked = [name for name in ROUTING_NEEDS if checks[name]["status"] == "drift"]
        checks["routing"] = check_routing(host, p, expected, opts, blocked)
        entry["checks"].update(checks)
    drift = []
    order = {name: i for i, name in enumerate(PRIMARY_CHECKS + RUNNER_CHECKS + CHECKS)}
    for host in sorted(hosts):
        checks = hosts[host]["checks"]
        hosts[host]["checks"] = {k: checks[k] for k in sorted(checks, key=order.get)}
        for name, verdict in hosts[host]["checks"].items():
            if verdict["status"] == "drift":
                drift.append(
                    {"host": host, "check": name, "detail": verdict["detail"], "fix": verdict["fix"]}
                )
    unchecked = sorted(set(unchecked))
    checked = sum(1 for h in secondaries if h not in unchecked)
    code = (EXIT_DRIFT if drift else 0) | (EXIT_UNCHECKED if unchecked else 0)
    return {
        "hosts": hosts,
        "drift": drift,
        "unchecked": unchecked,
        "summary": _summary_line(drift, unchecked, checked),
        "exit_code": code,
    }


def _seen(p):
    """What the probe saw that a reader of the report wants at hand."""
    g = p.get("generation") if isinstance(p.get("generation"), Mapping) else {}
    hb = p.get("heartbeat") if isinstance(p.get("heartbeat"), Mapping) else {}
    e = p.get("exim") if isinstance(p.get("exim"), Mapping) else {}
    return {
        "generation": g.get("current"),
        "heartbeat_mtime": hb.get("mtime"),
        "exim": e.get("installed_version"),
        "routed": len(p.get("routing") or {}) if isinstance(p.get("routing"), Mapping) else 0,
        "probe_seconds": sum((p.get("timing") or {}).values())
        if isinstance(p.get("timing"), Mapping)
        else None,
    }


def _label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(report, host, now):
    """The node_exporter textfile of one host of a drift report (Prometheus text format).

    Every check of the host's role(s) is a sample of ``smartmx_drift`` (1 drifted, 0 not),
    present when 0; ``smartmx_drift_checked`` says whether it was judged (1) or not
    (skipped, or the host unreachable: 0). Times are timestamps, not ages.
    """
    if not isinstance(report, Mapping) or host not in (report.get("hosts") or {}):
        raise DriftError(f"the report has no host {host!r}")
    entry = report["hosts"][host]
    roles = entry.get("role") or []
    names = []
    if "primary" in roles:
        names += list(PRIMARY_CHECKS)
    if "runner" in roles:
        names += list(RUNNER_CHECKS)
    if "secondary" in roles:
        names += [c for c in CHECKS if c not in names and (c != "schedule" or "schedule" in entry["checks"])]
    checks = entry.get("checks") or {}
    mx = _label(host)
    out = [
        "# HELP smartmx_drift Whether the drift check found this check drifted (1) or not (0).",
        "# TYPE smartmx_drift gauge",
    ]
    for name in names:
        status = (checks.get(name) or {}).get("status")
        out.append(f'smartmx_drift{{mx="{mx}",check="{name}"}} {1 if status == "drift" else 0}')
    out += [
        "# HELP smartmx_drift_checked Whether the check was judged (1), or skipped or not reachable (0).",
        "# TYPE smartmx_drift_checked gauge",
    ]
    for name in names:
        status = (checks.get(name) or {}).get("status")
        out.append(
            f'smartmx_drift_checked{{mx="{mx}",check="{name}"}} {1 if status in ("ok", "drift") else 0}'
        )
    out += [
        "# HELP smartmx_drift_host_checked Whether the host could be checked at all.",
        "# TYPE smartmx_drift_host_checked gauge",
        f'smartmx_drift_host_checked{{mx="{mx}"}} {0 if "unchecked" in entry else 1}',
        "# HELP smartmx_drift_check_last_run_timestamp_seconds When the drift check ran.",
        "# TYPE smartmx_drift_check_last_run_timestamp_seconds gauge",
        f'smartmx_drift_check_last_run_timestamp_seconds{{mx="{mx}"}} {float(now):.3f}',
    ]
    beat = (entry.get("seen") or {}).get("heartbeat_mtime")
    if beat is not None:
        out += [
            "# HELP smartmx_alias_sync_last_success_timestamp_seconds The last push that reached the host.",
            "# TYPE smartmx_alias_sync_last_success_timestamp_seconds gauge",
            f'smartmx_alias_sync_last_success_timestamp_seconds{{mx="{mx}"}} {float(beat):.3f}',
        ]
    return "\n".join(out) + "\n"


def summary_text(report, report_path=None):
    """The few lines a postmaster reads at the end of a run: what drifted, where, and the fix."""
    lines = [report.get("summary", "")]
    for d in report.get("drift") or []:
        lines.append(f"- {d['host']} {d['check']}: {d['detail']}")
        lines.append(f"  fix: {d['fix']}")
    for host in report.get("unchecked") or []:
        why = ((report.get("hosts") or {}).get(host) or {}).get("unchecked")
        lines.append(f"- {host} NOT CHECKED: {why}")
    for host, entry in sorted((report.get("hosts") or {}).items()):
        skipped = [n for n, v in (entry.get("checks") or {}).items() if v.get("status") == "skipped"]
        if skipped:
            lines.append(f"- {host}: {', '.join(skipped)} skipped (depends on a drifted check)")
    if report_path:
        lines.append(f"report: {report_path}")
    return lines


def _why(p):
    why = p.get("msg") if isinstance(p, Mapping) else None
    return why or "no probe result (failed or unreachable)"


__all__ = [
    "CHECKS",
    "EXIT_DRIFT",
    "EXIT_UNCHECKED",
    "PRIMARY_CHECKS",
    "ROUTING_NEEDS",
    "RUNNER_CHECKS",
    "DriftError",
    "drift_report",
    "expected_files",
    "metrics",
    "prediction",
    "routing_matches",
    "routing_plan",
    "routing_sample",
    "summary_text",
]

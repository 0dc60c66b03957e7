# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""What smartmx.exim.mx_probe reads on a host, and the parsers of the commands it runs.

Private to smartmx.exim.  Every function here only reads: the generation tree
of alias_sync, the heartbeat, ``/proc``, and the text of ``exim4 -bV``,
``exim4 -bt``, ``dpkg-query``, ``apt-cache policy`` and ``systemctl show``.
A missing file or a command's odd output is reported in the result (an
``error`` key), never raised.
"""

from __future__ import absolute_import, division, print_function

import calendar
import hashlib
import json
import os
import re
import time

from . import _alias_sync as gen
from ._alias_relocate import RelocateError, unrelocate
from ._debversion import VersionError, newest, sort_key, strip_suffix

GENERATIONS = "generations"
CURRENT = "current"
HEARTBEAT = "heartbeat"
PROC = "/proc"
DPKG_STATUS = "/var/lib/dpkg/status"
EXIM_PACKAGES = ("exim4-base", "exim4-config", "exim4-daemon-heavy", "exim4-daemon-light")
UNIT_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "Result",
    "ExecMainStatus",
    "LastTriggerUSec",
    "NextElapseUSecRealtime",
)
# timestamps also returned as epoch seconds, under a short name
UNIT_TIMES = {"LastTriggerUSec": "LastTrigger", "NextElapseUSecRealtime": "NextElapse"}
CHUNK = 1 << 20


# --------------------------------------------------------------------------- generation


def _os_error(path, exc):
    """A one-line reason for a path that could not be read."""
    if isinstance(exc, FileNotFoundError):
        return f"{path} does not exist"
    return f"{path}: {exc.strerror or exc}"


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _pushed_sha256(path, offsets, prefixes):
    """sha256 of a stored file as it was pushed: the relocation prefix removed at ``offsets``."""
    with open(path, "rb") as f:
        data = f.read()
    if not offsets:
        return gen.digest(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for prefix in prefixes:
        try:
            return gen.digest(unrelocate(text, offsets, prefix).encode("utf-8"))
        except RelocateError:
            continue
    return None


def _stored_files(gen_dir):
    """Relative paths of every file below a generation directory (MANIFEST.json left out)."""
    out = []
    for root, dirs, files in os.walk(gen_dir):
        dirs.sort()
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.relpath(os.path.join(root, name), gen_dir).replace(os.sep, "/")
            if rel != gen.MANIFEST:
                out.append(rel)
    return sorted(out)


def generation_ids(base):
    """Ids of the generations below ``<base>/generations`` (sorted), or None if it cannot be read."""
    try:
        names = os.listdir(os.path.join(base, GENERATIONS))
    except OSError:
        return None
    return sorted(n for n in names if gen.ID_RE.match(n))


def generation_state(base):
    """The current generation under ``base``: its id, manifest, and whether its files match the manifest.

    Returns ``{"base_dir", "exists", "current", "current_target", "generations",
    "manifest", "manifest_sha256", "files_digest", "intact", "mismatched",
    "missing", "extra", "error"}``.  ``intact`` is true when every file the
    manifest lists is on disk with the sha256 it was pushed with (relocated
    ``:include:`` paths undone as alias_sync does when it re-reads a
    generation) and no other file is there.
    """
    base = base.rstrip("/") or "/"
    out = {
        "base_dir": base,
        "exists": os.path.isdir(base),
        "current": None,
        "current_target": None,
        "generations": generation_ids(base) or [],
        "manifest": None,
        "manifest_sha256": None,
        "files_digest": None,
        "intact": False,
        "mismatched": [],
        "missing": [],
        "extra": [],
        "error": None,
    }
    if not out["exists"]:
        out["error"] = f"{base} does not exist"
        return out
    try:
        target = os.readlink(os.path.join(base, CURRENT))
    except OSError as exc:
        out["error"] = _os_error(f"{base}/{CURRENT}", exc)
        return out
    gen_id = os.path.basename(target.rstrip("/"))
    out["current_target"] = target
    out["current"] = gen_id
    gen_dir = os.path.join(base, GENERATIONS, gen_id)
    if not os.path.isdir(gen_dir):
        out["error"] = f"{base}/{CURRENT} points at {target}, which is not a directory"
        return out
    try:
        with open(os.path.join(gen_dir, gen.MANIFEST), "rb") as f:
            raw = f.read()
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no files mapping")
    except OSError as exc:
        out["error"] = _os_error(f"{gen_id}/{gen.MANIFEST}", exc)
        return out
    except ValueError as exc:
        out["error"] = f"{gen_id}/{gen.MANIFEST} is not a manifest: {exc}"
        return out
    files = manifest["files"]
    relocations = manifest.get("relocations") or {}
    out["manifest_sha256"] = gen.digest(raw)
    out["manifest"] = {k: v for k, v in manifest.items() if k not in ("relocations", "errors")}
    out["manifest"]["errors_count"] = len(manifest.get("errors") or [])
    try:
        out["files_digest"] = gen.files_digest(files)
    except (KeyError, TypeError):
        out["error"] = f"{gen_id}/{gen.MANIFEST}: a file without sha256"
        return out
    # alias_sync inserts "<base_dir>/generations/<id>/include" as given to it;
    # the real path serves when base_dir was reached through a symbolic link.
    prefixes = [f"{base}/{GENERATIONS}/{gen_id}/{gen.INCLUDE_DIR}"]
    real = os.path.realpath(base)
    if real != base:
        prefixes.append(f"{real}/{GENERATIONS}/{gen_id}/{gen.INCLUDE_DIR}")
    for rel in sorted(files):
        path = os.path.join(gen_dir, rel)
        if not os.path.isfile(path):
            out["missing"].append(rel)
            continue
        try:
            got = _pushed_sha256(path, relocations.get(rel), prefixes)
        except OSError:
            got = None
        if got != files[rel].get("sha256"):
            out["mismatched"].append(rel)
    out["extra"] = [rel for rel in _stored_files(gen_dir) if rel not in files]
    if manifest.get("generation") not in (None, gen_id):
        out["error"] = f"the manifest names generation {manifest.get('generation')}, current is {gen_id}"
    out["intact"] = not (out["missing"] or out["mismatched"] or out["extra"] or out["error"])
    return out


def heartbeat_state(path):
    """``{"path", "exists", "mtime", "content", "error"}`` of the heartbeat file."""
    out = {"path": path, "exists": False, "mtime": None, "content": None, "error": None}
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(1 << 16)
    except OSError as exc:
        out["error"] = _os_error(path, exc)
        return out
    out["exists"] = True
    out["mtime"] = st.st_mtime
    try:
        out["content"] = json.loads(data)
    except ValueError as exc:
        out["error"] = f"{path} is not JSON: {exc}"
    return out


# --------------------------------------------------------------------------- the exim build


def exim_version(bv_text):
    """``(first line, version)`` of ``exim -bV`` output (``Exim version 4.96 #2 built ...``)."""
    first = (bv_text or "").strip().split("\n", 1)[0].strip()
    m = re.match(r"Exim version (\S+)", first)
    return first, (m.group(1) if m else None)


def parse_dpkg_query(text):
    """``{package: {"version", "status", "installed", "hold"}}`` of
    ``dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\t${db:Status-Want}\\n'``.

    ``installed`` when dpkg's current state is installed (the second letter of
    the abbreviation ``ii``, ``hi``); ``hold`` when the selection is ``hold``
    (what ``dpkg --get-selections`` and ``apt-mark showhold`` show).
    """
    out = {}
    for line in (text or "").splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or not fields[0]:
            continue
        name, version, abbrev, want = fields[0], fields[1], fields[2], fields[3].strip()
        installed = len(abbrev) > 1 and abbrev[1] == "i"
        out[name] = {
            "version": version if installed else None,
            "status": abbrev.strip(),
            "installed": installed,
            "hold": want == "hold",
        }
    return out


_POLICY_PKG = re.compile(r"^(\S+):$")
_POLICY_VERSION = re.compile(r"^ (?:\*\*\*| {3}) (\S+) (-?\d+)$")
_POLICY_SOURCE = re.compile(r"^ {8}(-?\d+) (.+)$")


def parse_apt_policy(text):
    """``apt-cache policy`` output (C locale) as ``{package: {"installed", "candidate", "versions"}}``.

    ``versions`` is the version table: ``[{"version", "priority", "sources", "installed"}]``.
    """
    out = {}
    pkg = None
    version = None
    for line in (text or "").splitlines():
        m = _POLICY_PKG.match(line)
        if m:
            pkg = {"installed": None, "candidate": None, "versions": []}
            out[m.group(1)] = pkg
            version = None
            continue
        if pkg is None:
            continue
        stripped = line.strip()
        for key in ("installed", "candidate"):
            if stripped.startswith(key.capitalize() + ":"):
                value = stripped.split(":", 1)[1].strip()
                pkg[key] = None if value == "(none)" else value
        m = _POLICY_VERSION.match(line)
        if m:
            version = {
                "version": m.group(1),
                "priority": int(m.group(2)),
                "sources": [],
                "installed": line.startswith(" ***"),
            }
            pkg["versions"].append(version)
            continue
        m = _POLICY_SOURCE.match(line)
        if m and version is not None:
            version["sources"].append(m.group(2).strip())
    return out


def offered_versions(policy_entry, local_suffix):
    """Versions an archive offers (not only the dpkg status file), without the local suffix."""
    got = []
    for v in (policy_entry or {}).get("versions") or []:
        if local_suffix and local_suffix in v["version"]:
            continue
        if any(s != DPKG_STATUS for s in v["sources"]):
            got.append(v["version"])
    return got


def build_state(bv_text, dpkg_text, policy_text, local_suffix, errors=None):
    """The exim section of a probe from the three commands' outputs."""
    first, version = exim_version(bv_text)
    packages = parse_dpkg_query(dpkg_text)
    for name in EXIM_PACKAGES:
        packages.setdefault(name, {"version": None, "status": "", "installed": False, "hold": False})
    for info in packages.values():
        info["local_suffix"] = bool(
            info["version"] and local_suffix and info["version"].endswith(local_suffix)
        )
    policy = parse_apt_policy(policy_text)
    base = packages["exim4-base"]
    try:
        offered = sorted(offered_versions(policy.get("exim4-base"), local_suffix), key=sort_key)
    except VersionError:
        offered = []
    base_version = strip_suffix(base["version"], local_suffix)[0] if base["version"] else None
    daemon = next(
        (n for n in ("exim4-daemon-heavy", "exim4-daemon-light") if packages[n]["installed"]),
        None,
    )
    installed = [n for n in EXIM_PACKAGES if packages[n]["installed"]]
    return {
        "bV": first or None,
        "version": version,
        "packages": {n: packages[n] for n in EXIM_PACKAGES},
        "daemon_package": daemon,
        "installed_version": base["version"],
        "base_version": base_version,
        "local_suffix": local_suffix,
        "local_build": bool(installed) and all(packages[n]["local_suffix"] for n in installed),
        "held": [n for n in installed if packages[n]["hold"]],
        "apt_newest": newest(offered) if offered else None,
        "apt_offered": offered,
        "apt_candidate": (policy.get("exim4-base") or {}).get("candidate"),
        "errors": list(errors or []),
    }


# --------------------------------------------------------------------------- config and daemon


def _read(path, binary=False):
    with open(path, "rb" if binary else "r") as f:
        return f.read()


def boot_time(proc=PROC):
    for line in _read(os.path.join(proc, "stat")).splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    raise ValueError("no btime in /proc/stat")


# A process's start time is the boot time (whole seconds in /proc/stat) plus its start in
# clock ticks: up to a second early. A daemon restarted right after an edit is not older.
START_SLACK = 1.0


def process_start(stat_text, btime, hz):
    """Start time (epoch seconds) of a process from its ``/proc/<pid>/stat`` text."""
    fields = stat_text[stat_text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); starttime is field 22
    return btime + int(fields[19]) / float(hz), int(fields[1])


# -bd, and -bdf (in the foreground: Debian 13's exim4.service runs ``exim4 -bdf -q30m``).
DAEMON_FLAGS = frozenset(("-bd", "-bdf"))


def exim_processes(proc=PROC):
    """``[{"pid", "args", "stat"}]`` of the processes whose program is exim, with -bd or -bdf in argv."""
    out = []
    try:
        names = os.listdir(proc)
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            argv = _read(os.path.join(proc, name, "cmdline"), binary=True).split(b"\0")
            stat = _read(os.path.join(proc, name, "stat"))
        except OSError:
            continue  # gone meanwhile, or not ours to read
        argv = [a.decode("utf-8", "replace") for a in argv if a]
        if (
            not argv
            or not os.path.basename(argv[0]).startswith("exim")
            or not DAEMON_FLAGS.intersection(argv)
        ):
            continue
        out.append({"pid": int(name), "args": " ".join(argv), "stat": stat})
    return out


def daemons(proc=PROC, hz=None):
    """The exim daemons (``-bd`` processes whose parent is not one), by pid, with their start time."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    btime = boot_time(proc)
    procs = {}
    for p in exim_processes(proc):
        start, ppid = process_start(p["stat"], btime, hz)
        procs[p["pid"]] = {"pid": p["pid"], "ppid": ppid, "args": p["args"], "start": start}
    return [p for pid, p in sorted(procs.items()) if p["ppid"] not in procs]


def config_state(config_path, proc=None, hz=None):
    """sha256 and mtime of the exim configuration, the daemons, and whether one runs an older config."""
    proc = proc or PROC
    out = {
        "path": config_path,
        "exists": False,
        "sha256": None,
        "mtime": None,
        "daemons": [],
        "daemon_count": 0,
        "daemon_pid": None,
        "daemon_start": None,
        "daemon_older_than_config": None,
        "error": None,
    }
    try:
        out["mtime"] = os.stat(config_path).st_mtime
        out["sha256"] = _sha256_file(config_path)
        out["exists"] = True
    except OSError as exc:
        out["error"] = _os_error(config_path, exc)
    try:
        found = daemons(proc, hz)
    except (OSError, ValueError, IndexError) as exc:
        found = []
        out["error"] = out["error"] or f"cannot read the process table: {exc}"
    out["daemons"] = found
    out["daemon_count"] = len(found)
    if found:
        out["daemon_pid"] = found[0]["pid"]
        out["daemon_start"] = found[0]["start"]
        if out["mtime"] is not None:
            out["daemon_older_than_config"] = any(d["start"] + START_SLACK < out["mtime"] for d in found)
    return out


# --------------------------------------------------------------------------- systemd units


def systemd_time(value):
    """Epoch seconds of a ``systemctl show`` timestamp (``Wed 2026-12-02 14:25:28 UTC``, ``@N``), or None."""
    value = (value or "").strip()
    if not value or value in ("n/a", "0"):
        return None
    if value.startswith("@") and value[1:].replace(".", "", 1).isdigit():
        return float(value[1:])
    if value.isdigit():  # microseconds
        return int(value) / 1e6
    parts = value.split()
    if len(parts) >= 3 and parts[-1] == "UTC":
        try:
            return float(calendar.timegm(time.strptime(" ".join(parts[-3:-1]), "%Y-%m-%d %H:%M:%S")))
        except ValueError:
            return None
    return None


def parse_systemctl_show(text, units):
    """``{unit: {property: value}}`` of ``systemctl show -p ... unit...`` (a blank line between units)."""
    blocks = []
    current = {}
    for line in (text or "").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    out = {}
    by_id = {b.get("Id"): b for b in blocks if b.get("Id")}
    for i, unit in enumerate(units):
        block = by_id.get(unit)
        if block is None and len(blocks) == len(units):
            block = blocks[i]
        block = block or {}
        entry = {p: block.get(p) for p in UNIT_PROPERTIES if p != "Id"}
        status = entry.get("ExecMainStatus")
        entry["ExecMainStatus"] = int(status) if status and status.lstrip("-").isdigit() else status
        for prop, short in UNIT_TIMES.items():
            entry[short] = systemd_time(block.get(prop))
        out[unit] = entry
    return out


# --------------------------------------------------------------------------- exim -bt


_RE_ROUTER = re.compile(r"^  router = (?P<router>[^,]+), transport = (?P<transport>.+)$")
_RE_DISCARD = re.compile(r"^mail to (?P<addr>.+) is discarded$")
_RE_FAIL = re.compile(r"^(?P<addr>.+?) is undeliverable(?:: (?P<msg>.*))?$")
_RE_DEFER = re.compile(r"^(?P<addr>.+?) cannot be resolved at this time(?:: (?P<msg>.*))?$")
_RE_PFR = re.compile(r"^(?P<parent>.+?) -> (?P<target>[|/].*?)(?: \*\*\* forbidden \*\*\*)?$")
_RE_SYNTAX = re.compile(r"^syntax error: (?P<msg>.*)$")
_DUPLICATE = "   [duplicate, would not be delivered]"
ANCESTOR = "    <-- "


def norm_address(address):
    """An address with its domain lower-cased (local parts keep their case, as exim keeps them)."""
    local, sep, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if sep else address


def _key(address):
    return address.strip().strip("<>").lower()


def _routed_at(lines, i):
    """(index of the router line, ancestors) when lines[i] is a routed address, else (None, ancestors)."""
    j = i + 1
    ancestors = []
    while j < len(lines) and lines[j].startswith(ANCESTOR):
        ancestors.append(lines[j][len(ANCESTOR) :].strip())
        j += 1
    if j < len(lines) and _RE_ROUTER.match(lines[j]):
        return j, ancestors
    return None, ancestors


def _pfr_at(lines, i):
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    return " -> " in lines[i] and (
        nxt.startswith("  transport = ") or nxt.startswith("*** ") or lines[i].endswith(" *** forbidden ***")
    )


def _starts(lines, i):
    """Whether lines[i] starts a report (or is the ancestry of one)."""
    line = lines[i]
    if line.startswith(ANCESTOR):
        return True
    if not line.strip() or line.startswith(" "):
        return False
    return bool(
        _routed_at(lines, i)[0] is not None
        or _pfr_at(lines, i)
        or _RE_DISCARD.match(line)
        or _RE_DEFER.match(line)
        or _RE_FAIL.match(line)
        or _RE_SYNTAX.match(line)
    )


def _reports(lines):
    """Split -bt output into reports: ``(kind, address, ancestors, detail)``.

    kind is ``routed`` (detail = (router, transport)), ``discard``, ``fail``,
    ``defer`` (detail = message), ``pfr`` (detail = target), ``syntax``
    (detail = message) or ``unknown`` (detail = the line).  A ``:fail:`` or
    ``:defer:`` text read from an include file may run over several lines:
    they belong to the message up to the next report or ancestry line.
    """
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip() or line.startswith(" "):
            i += 1
            continue
        router_at, ancestors = _routed_at(lines, i)
        if router_at is not None:
            m = _RE_ROUTER.match(lines[router_at])
            address = line[: -len(_DUPLICATE)] if line.endswith(_DUPLICATE) else line
            yield (
                "routed",
                address.strip(),
                ancestors,
                (m.group("router").strip(), m.group("transport").strip()),
            )
            i = router_at + 1
            continue
        if _pfr_at(lines, i):
            m = _RE_PFR.match(line)
            yield "pfr", (m.group("parent") if m else line), ancestors, (m.group("target") if m else line)
            # "*** Error in setting up pipe, file, or autoreply:" and its reason
            i += 3 if i + 1 < n and lines[i + 1].startswith("*** ") else 1
            continue
        for kind, rx in (("discard", _RE_DISCARD), ("defer", _RE_DEFER), ("fail", _RE_FAIL)):
            m = rx.match(line)
            if m:
                text = [(m.groupdict().get("msg") or "").strip()]
                j = i + 1
                while j < n and not _starts(lines, j):
                    text.append(lines[j])
                    j += 1
                while len(text) > 1 and not text[-1].strip():
                    text.pop()
                ancestors = []
                while j < n and lines[j].startswith(ANCESTOR):
                    ancestors.append(lines[j][len(ANCESTOR) :].strip())
                    j += 1
                yield kind, m.group("addr").strip(), ancestors, "\n".join(text)
                i = j
                break
        else:
            m = _RE_SYNTAX.match(line)
            yield ("syntax" if m else "unknown"), "", [], (m.group("msg") if m else line)
            i += 1


def parse_bt(stdout, addresses, primary_transport="to_primary"):
    """Per address of one ``exim -bt`` run, what exim does with it.

    ``{"result": "remote", "to": [...]}``, ``{"result": "primary", "primary": [...]}``,
    ``{"result": "mixed", "to": [...], "primary": [...]}``, ``{"result": "refused",
    "message": m}``, ``{"result": "defer", "message": m}``, ``{"result": "discard"}``;
    ``to`` are the final addresses routed to another transport (sorted, domains
    lower-cased), ``primary`` those routed to ``primary_transport`` (the address
    itself when it goes there whole).  A routed address may also carry
    ``failed`` / ``deferred`` (children that fail or defer) and ``pfr`` (a pipe,
    file or directory exim would deliver itself).  ``{"result": "error",
    "message": m}`` when exim printed nothing for the address.
    """
    keys = [_key(a) for a in addresses]
    found = {
        a: {"to": set(), "primary": set(), "failed": [], "deferred": [], "pfr": [], "self": None}
        for a in addresses
    }
    pos = 0

    def owner(top):
        nonlocal pos
        k = _key(top)
        for idx in range(pos, len(addresses)):
            if keys[idx] == k:
                pos = idx
                return addresses[idx]
        return addresses[pos] if addresses else None

    for kind, address, ancestors, detail in _reports((stdout or "").split("\n")):
        if kind == "syntax":
            # the address exim could not read is the one after the last one reported
            target = None
            for idx in range(pos, len(addresses)):
                f = found[addresses[idx]]
                if not (f["to"] or f["primary"] or f["self"] or f["failed"] or f["deferred"]):
                    target = addresses[idx]
                    pos = idx
                    break
            if target is not None:
                found[target]["self"] = ("refused", "syntax error: " + detail)
            continue
        top = ancestors[-1] if ancestors else address
        who = owner(top)
        if who is None:
            continue
        f = found[who]
        if kind == "routed":
            _router, transport = detail
            (f["primary"] if transport == primary_transport else f["to"]).add(norm_address(address))
        elif kind == "pfr":
            f["pfr"].append(detail)
        elif kind == "discard":
            if not ancestors:
                f["self"] = f["self"] or ("discard", "")
        elif kind == "unknown":
            continue
        elif not ancestors and _key(address) == _key(who):
            f["self"] = ("refused" if kind == "fail" else "defer", detail)
        else:
            (f["failed"] if kind == "fail" else f["deferred"]).append({"address": address, "message": detail})
    return {a: _verdict(found[a]) for a in addresses}


def _verdict(f):
    if f["self"] and f["self"][0] in ("refused", "defer"):
        return {"result": f["self"][0], "message": f["self"][1]}
    to, primary = sorted(f["to"]), sorted(f["primary"])
    if to and primary:
        out = {"result": "mixed", "to": to, "primary": primary}
    elif primary:
        out = {"result": "primary", "primary": primary}
    elif to:
        out = {"result": "remote", "to": to}
    elif f["deferred"]:
        return {"result": "defer", "message": f["deferred"][0]["message"]}
    elif f["failed"]:
        return {"result": "refused", "message": f["failed"][0]["message"]}
    elif f["self"]:
        return {"result": "discard"}
    elif f["pfr"]:
        return {
            "result": "error",
            "message": "a pipe, file or directory the host would deliver itself",
            "pfr": f["pfr"],
        }
    else:
        return {"result": "error", "message": "exim printed nothing for this address"}
    for key in ("failed", "deferred", "pfr"):
        if f[key]:
            out[key] = f[key]
    return out


def batches(items, size):
    """``items`` in lists of at most ``size``."""
    size = max(1, int(size))
    return [items[k : k + size] for k in range(0, len(items), size)]

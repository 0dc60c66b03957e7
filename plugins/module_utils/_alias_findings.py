# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Findings a postmaster can act on.  Private to smartmx.exim.

Every finding is a dict with a stable ``code``, a ``severity`` (error,
warning, info), the ``file`` and ``line`` it is about, the ``local_part``
when there is one, a ``message`` and, where a rewrite helps, a
``suggestion``.  docs/aliases.md explains every code.
"""

from __future__ import absolute_import, division, print_function

from collections.abc import Mapping

from ._alias_address import ascii_lower

_STOPS = ("fail", "defer", "blackhole")
_SWALLOWED = ("include:", "fail:", "defer:", "blackhole:", "unknown:")


def finding(code, severity, file, line, message, local_part=None, suggestion=None):
    out = {"code": code, "severity": severity, "file": file, "line": line, "message": message}
    if local_part is not None:
        out["local_part"] = local_part
    if suggestion is not None:
        out["suggestion"] = suggestion
    return out


def parse_findings(raw_entries, duplicates, entries, source):
    """Findings visible from the file alone."""
    out = []
    for raw, first in duplicates:
        if not raw.key:
            out.append(
                finding(
                    "empty-key",
                    "warning",
                    source,
                    raw.line,
                    "line starts with a colon: an empty key that no address can match",
                )
            )
            continue
        out.append(
            finding(
                "duplicate-key",
                "warning",
                source,
                raw.line,
                f"duplicate key {raw.key!r}: exim uses the first one (line {first['line']}) "
                "and ignores this one",
                raw.key.lower(),
            )
        )
    for raw in raw_entries:
        if raw.dropped or raw.backslash or raw.data.startswith(_SWALLOWED):
            out.extend(_raw_findings(raw, source))
    for key, entry in entries.items():
        items = entry["items"]
        if "error" in entry or (items and items[-1]["type"] in _STOPS):
            out.extend(_entry_findings(key, entry, source))
    return out


def _raw_findings(raw, source):
    if not raw.dropped and not raw.backslash and not raw.data.startswith(_SWALLOWED):
        return []
    out = []
    key = raw.key.lower()
    for line in raw.dropped:
        out.append(
            finding(
                "dropped-continuation",
                "error",
                source,
                line,
                f"indented line after a blank or comment line inside the entry for {raw.key!r}: "
                "exim ends the entry at the blank/comment line and ignores this line",
                key,
                "remove the blank or comment line, or move the comment after the entry",
            )
        )
    for line in raw.backslash:
        out.append(
            finding(
                "backslash-continuation",
                "warning",
                source,
                line,
                "line ends with a backslash: sendmail joins lines this way, exim does not "
                "(the backslash becomes part of the next item)",
                key,
                "drop the backslash; in exim a continuation line just starts with white space",
            )
        )
    if raw.data.startswith(_SWALLOWED):
        word = raw.data.split(":")[0]
        out.append(
            finding(
                "missing-colon",
                "error",
                source,
                raw.line,
                f"the key {raw.key!r} is not followed by its own colon, so exim takes the first colon "
                f"of ':{word}:' as the key separator and reads '{word}:' as an address",
                key,
                f"{raw.key}: :{raw.data}",
            )
        )
    return out


def _entry_findings(key, entry, source):
    error = entry.get("error")
    items = entry["items"]
    if not error and (not items or items[-1]["type"] not in ("fail", "defer", "blackhole")):
        return []  # the special items always end a list
    out = []
    if error:
        out.append(
            finding(
                "syntax-error",
                "error",
                source,
                error["line"],
                "syntax error: {}; exim defers every message for {!r} (the other aliases "
                "keep working)".format(error["message"], key),
                key,
            )
        )
    items = entry["items"]
    for pos, item in enumerate(items):
        kind = item["type"]
        if kind in ("fail", "defer") and "," in item["value"]:
            out.append(
                finding(
                    "special-swallows-rest",
                    "warning",
                    source,
                    item["line"],
                    ":{}: takes the whole rest of the list as its message: {!r}".format(kind, item["value"]),
                    key,
                )
            )
        if kind in ("defer", "blackhole") and pos > 0:
            out.append(
                finding(
                    f"{kind}-drops-items",
                    "warning",
                    source,
                    item["line"],
                    f":{kind}: applies to the whole alias: the items before it are ignored",
                    key,
                )
            )
        if kind == "fail" and pos > 0:
            out.append(
                finding(
                    "fail-keeps-items",
                    "warning",
                    source,
                    item["line"],
                    ":fail: bounces the alias, yet exim still delivers the items before it",
                    key,
                )
            )
    return out


def _include_line(cache, path, item):
    text = cache.texts.get(path, "")
    return text.count("\n", 0, item["offset"]) + 1


def _where(cache, source, origin, item):
    if origin is None:
        return source, item.get("line")
    return origin, _include_line(cache, origin, item)


class _Lines:
    """Line of each alias, looked up when a finding needs it."""

    def __init__(self, entries):
        self.entries = entries

    def get(self, key):
        entry = self.entries.get(key)
        return entry.get("line") if isinstance(entry, Mapping) else None


def route_findings(parsed, entries, resolver, users, domain, source, complex_keys, keys):
    """Findings that need routing: includes, pfr, loops, dangling targets.

    ``keys`` (sorted) are the aliases to look at: the others are one plain
    off-site address or one pipe, file or directory, which have none.
    """
    out = []
    lines = _Lines(parsed["entries"])
    levels = resolver.levels.get(domain, {})
    for key in keys:
        lvl = levels.get(key) or resolver.level(key, domain)
        pfr = lvl.pfr and lvl.outcome == "ok"  # its own expansion needs pfr
        if not lvl.include_problems and not lvl.include_pfr and not lvl.pfr:
            continue
        for code, path, item, origin in lvl.include_problems:
            file, line = _where(resolver.cache, source, origin, item)
            text = {
                "include-missing": "include file {} is missing: exim defers every message for {!r}",
                "include-loop": ":include: of {} loops or nests too deep: {!r} defers",
                "include-error": "include file {} is outside include_directory: {!r} defers",
            }[code]
            out.append(finding(code, "error", file, line, text.format(path, key), key))
        seen = set()
        for path, item in lvl.include_pfr:
            if path in seen:
                continue
            seen.add(path)
            out.append(
                finding(
                    "pfr-in-include",
                    "warning",
                    path,
                    _include_line(resolver.cache, path, item),
                    f"{item['type']} {item['value']!r} hidden in include file {path} makes {key!r} "
                    "need the primary: the secondary punts the whole alias",
                    key,
                )
            )
        if pfr:
            out.extend(_pfr_findings(key, entries[key], lvl, lines.get(key), source, entries))
        elif lvl.pfr:  # before :fail: or :defer:
            out.append(_pfr_before_stop(key, lvl, lines.get(key), source))
    for key in complex_keys:
        out.append(
            finding(
                "too-complex",
                "error",
                source,
                lines.get(key),
                f"the aliases reachable from {key!r} loop so densely that the model gave up",
                key,
            )
        )
    out.extend(_loop_findings(resolver, entries, lines, source))
    out.extend(_dangling(resolver, entries, domain, source, lines, keys))
    return out


def _pfr_before_stop(key, lvl, line, source):
    stop = ":" + lvl.outcome + ":"
    if lvl.outcome == "fail":
        what = (
            "the primary runs it for mail that reaches {k!r} through another alias and bounces {k!r}; "
            "the secondary punts {k!r} whole, so the primary must take punted mail without verifying "
            "the recipient, or the pipe/file is lost"
        )
    else:
        what = (
            "the primary defers {k!r} (the item does not run); the secondary punts {k!r} whole to the primary"
        )
    return finding(
        "pfr-before-stop",
        "warning",
        source,
        line,
        f"a pipe, file or directory before {stop} in {key!r}: " + what.format(k=key),
        key,
    )


def _render(item):
    value = item["value"]
    kind = item["type"]
    if kind == "include":
        return ":include:" + value
    if kind == "local" and item.get("backslash"):
        return "\\" + value
    if kind in ("pipe", "file", "directory") and any(c in value for c in ', "#'):
        return '"{}"'.format(value.replace("\\", "\\\\").replace('"', '\\"'))
    return value


def _pfr_findings(key, parsed, lvl, line, source, entries):
    out = []
    for kind, value, _item, _origin in lvl.children:
        if kind == "file" and value == "/dev/null":
            out.append(
                finding(
                    "devnull-pfr",
                    "warning",
                    source,
                    line,
                    f"/dev/null is a file delivery: {key!r} needs the primary; use :blackhole: "
                    "to discard, or drop the item",
                    key,
                )
            )
    if not any(c[0] == "address" for c in lvl.children):
        return out
    pfr = [i for i in parsed.items if i["type"] in ("pipe", "file", "directory")]
    if not pfr:
        return out
    kinds = {i["type"] for i in pfr}
    suffix = "-pipe" if kinds == {"pipe"} else "-archive" if "pipe" not in kinds else "-local"
    name = key + suffix
    n = 2
    while name in entries:
        name = f"{key}{suffix}{n}"
        n += 1
    keep = [_render(i) for i in parsed.items if i["type"] in ("address", "local", "include")]
    split = "{}: {}\n{}: {}".format(key, ", ".join([*keep, name]), name, ", ".join(_render(i) for i in pfr))
    out.append(
        finding(
            "mixed-alias",
            "warning",
            source,
            line,
            f"{key!r} mixes forwards with a pipe/file: the secondary must punt it whole to the "
            "primary; split it so the secondary delivers the forwards itself",
            key,
            split,
        )
    )
    return out


def _loop_findings(resolver, entries, lines, source):
    out = []
    for parent, shown, is_user in sorted(resolver.loops):
        if is_user:
            continue
        out.append(
            finding(
                "loop",
                "error",
                source,
                lines.get(parent),
                f"{parent!r} generates {shown}, which is already being routed (a redirection loop): exim "
                "skips the aliases for it, and as it is no local user it is unroutable",
                parent,
            )
        )
    for parent in sorted(resolver.depth_cut):
        out.append(
            finding(
                "too-deep",
                "error",
                source,
                lines.get(parent),
                "aliases nest more than 101 levels below here: exim defers them (it logs 'routing loop')",
                parent,
            )
        )
    return out


def _dangling(resolver, entries, domain, source, lines, keys):
    """Local targets of an alias that are neither aliases nor local users.

    The one-step routes have looked at every child of their aliases already:
    ``resolver.unknown`` has their unknown local targets.
    """
    out = []
    domains = resolver.domains
    level = resolver.level
    levels = resolver.levels.get(domain, {})
    known = resolver.unknown
    for key in keys:
        found = known.get(key)
        if found is not None:
            for value, item, origin in found:
                out.append(_dangling_finding(resolver, key, value, item, origin, source, lines))
            continue
        lvl = levels.get(key) or level(key, domain)
        if lvl.offsite or not lvl.children:
            continue  # forwards only, or nothing generated
        for kind, value, item, origin in lvl.children:
            if kind != "address":
                continue
            if (
                '"' not in value
                and "\\" not in value
                and ascii_lower(value[value.rfind("@") + 1 :]) not in domains
            ):
                continue  # plain off-site address
            target, dom, _folded, _shown = resolver.info(value)
            if dom not in resolver.domains or target in resolver.users:
                continue
            if target in entries and resolver.level(target, dom).outcome != "decline":
                continue
            out.append(_dangling_finding(resolver, key, value, item, origin, source, lines))
    return out


def _dangling_finding(resolver, key, value, item, origin, source, lines):
    file, line = (
        (source, item.get("line", lines.get(key)))
        if origin is None
        else (origin, _include_line(resolver.cache, origin, item))
    )
    return finding(
        "dangling-target",
        "error",
        file,
        line,
        f"{key!r} sends to {value}, which is neither an alias nor a local user: "
        "exim finds no route for it and it bounces",
        key,
    )


def unsafe_key_findings(addresses, entries, source):
    """One ``unsafe-key`` finding per local part whose addresses hold a control character."""
    out = []
    lines = _Lines(entries)
    seen = set()
    for address in addresses:
        key = address[: address.rfind("@")]
        if key in seen:
            continue
        seen.add(key)
        in_file = key in entries
        out.append(
            finding(
                "unsafe-key",
                "warning",
                source if in_file else "users",
                lines.get(key) if in_file else None,
                f"the local part {key!r} holds a control character: it cannot be a key of the "
                "secondary's lists, so the secondary refuses its addresses at RCPT time",
                key,
            )
        )
    return out

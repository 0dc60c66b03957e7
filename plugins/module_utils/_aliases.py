# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The alias model of smartmx.exim: exim 4.96 alias files, and the routing
table of a secondary MX computed from them.

Public (to the collection) entry points, pure functions of plain data:

* ``parse_aliases(text, source="aliases")``
* ``secondary_routes(parsed, domains, includes=None, users=None,
  pfr_strategy="patch", source="aliases")``

See docs/aliases.md for the semantics and every finding code.
"""

from __future__ import absolute_import, division, print_function

import gc
import re
from collections.abc import Mapping, Sequence

from ._alias_address import ascii_lower
from ._alias_expand import PFR, IncludeCache
from ._alias_findings import parse_findings, route_findings, unsafe_key_findings
from ._alias_lsearch import RawEntry, fold_key, line_of, read_lsearch
from ._alias_parse import FAST_LINE, Parsed, fast_items, is_filter, parse_list
from ._alias_resolve import MAX_ANCESTORS, Resolver, Result, TooComplex, offsite_addresses, offsite_shown
from ._alias_shortcuts import shortcuts

STRATEGIES = ("patch", "precompute")
_STOPS = ("fail", "defer", "blackhole")


class AliasInputError(ValueError):
    """Input that is not alias data at all (wrong type, binary)."""

    def __init__(self, message, line=None):
        ValueError.__init__(self, message)
        self.line = line


def _text(text, what):
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text[: exc.start].count(b"\n") + 1
            raise AliasInputError(f"{what} is not UTF-8 text", line) from exc
    if not isinstance(text, str):
        raise AliasInputError(f"{what} must be a string, not {type(text).__name__}")
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise AliasInputError(f"{what} contains a NUL byte: binary data is not alias data", line)
    return text


class _NoGC:
    """Pause the cyclic garbage collector: the model builds many objects and no cycles."""

    def __init__(self):
        self.enabled = gc.isenabled()

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.enabled:
            gc.enable()


def parse_aliases(text, source="aliases"):
    """Parse an exim alias file (lsearch) into entries, errors and findings."""
    with _NoGC():
        return _parse_aliases(text, source)


def _parse_aliases(text, source, fast=True):
    """parse_aliases(); ``fast=False`` turns every fast path off (for tests)."""
    with shortcuts(fast):
        return _parse(text, source, fast)


def _parse(text, source, fast):
    text = _text(text, source)
    entries = {}
    errors = []
    raw_entries = read_lsearch(text, FAST_LINE if fast else None)
    duplicates = []
    slow = []
    for raw in raw_entries:
        if isinstance(raw, tuple):
            match, line = raw
            key, value, _pfr = match.groups()
            folded = key.lower() if key.isascii() else fold_key(key)
            if folded in entries:
                duplicates.append((RawEntry(key, line), entries[folded]))
                continue
            if value is not None and "," not in value:  # fast_items() of one plain item
                items = [{"type": "address" if "@" in value else "local", "value": value, "line": line}]
            else:
                items = fast_items(match, line)
            entries[folded] = {"line": line, "key": key, "items": items}
            continue
        slow.append(raw)
        key = raw.key
        key = key.lower() if key.isascii() else fold_key(key)
        if key in entries or not raw.key:
            duplicates.append((raw, entries.get(key)))
            continue
        if "#" in raw.data and is_filter(raw.data):
            # rda.c: a filter; the aliases router does not allow filters, so exim defers
            parsed = Parsed()
            parsed.stop, parsed.message = "filter", "filtering not enabled"
        else:
            parsed = parse_list(raw.data)
        items = parsed.items
        if len(raw.spans) == 1 and len(items) == 1:  # the common case of _with_lines
            item = items[0]
            del item["offset"]
            item["line"] = raw.line
        else:
            items = _with_lines(items, raw)
        entry = {"line": raw.line, "key": raw.key, "items": items}
        if parsed.stop in ("error", "filter"):
            err_line = line_of(raw, parsed.stop_offset)
            entry["error"] = {"line": err_line, "message": parsed.message}
            if parsed.stop == "filter":
                entry["error"]["filter"] = True
            errors.append({"line": err_line, "message": parsed.message, "local_part": key, "file": source})
        entries[key] = entry
    return {
        "entries": entries,
        "errors": errors,
        "source": source,
        "findings": parse_findings(slow, duplicates, entries, source),
    }


def _with_lines(items, raw):
    if len(raw.spans) == 1:
        line = raw.line
        for item in items:
            del item["offset"]
            item["line"] = line
        return items
    for item in items:
        item["line"] = line_of(raw, item.pop("offset"))
    return items


_KINDS = frozenset(("address", "local", "pipe", "file", "directory", "include", "unknown", *_STOPS))


def _rebuild(key, entry):
    """Parsed list of one entry from its plain-data form (items are shared, not copied)."""
    parsed = Parsed()
    items = entry.get("items")
    if items is None:
        items = []
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise AliasInputError(f"entry {key!r}: items must be a list")
    for pos, item in enumerate(items):
        # dicts of the right shape first: the Mapping check below is slower
        plain = isinstance(item, dict) and item.get("type") in _KINDS and isinstance(item.get("value"), str)
        if not plain and (
            not isinstance(item, Mapping)
            or item.get("type") not in _KINDS
            or not isinstance(item.get("value"), str)
        ):
            raise AliasInputError(f"entry {key!r}: item {pos} is not an alias item", entry.get("line"))
        if item["type"] in _STOPS:
            parsed.stop, parsed.message = item["type"], item["value"]
            items = items[: pos + 1]
            break
    parsed.items = items
    error = entry.get("error")
    if error and parsed.stop is None:
        parsed.stop = "filter" if error.get("filter") else "error"
        parsed.message = str(error.get("message", ""))
        parsed.stop_offset = error.get("line", entry.get("line"))
    return parsed


def _check_args(parsed, domains, includes, users, pfr_strategy):
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("entries"), Mapping):
        raise AliasInputError("parsed must be the result of parse_aliases (a dict with 'entries')")
    if isinstance(domains, str):
        domains = [domains]
    if not isinstance(domains, Sequence) or not domains or not all(isinstance(d, str) and d for d in domains):
        raise AliasInputError("domains must be a non-empty list of domain names")
    if includes is not None and not isinstance(includes, Mapping):
        raise AliasInputError("includes must be a dict {path: text}")
    if users is not None and not isinstance(users, (Mapping, Sequence)):
        raise AliasInputError("users must be a dict {name: {procmail: bool, forward: bool}}")
    if pfr_strategy not in STRATEGIES:
        raise AliasInputError("pfr_strategy must be one of {}".format(", ".join(STRATEGIES)))
    return [ascii_lower(d) for d in domains]


def _users(users):
    if users is None:
        return {}
    if not isinstance(users, Mapping):
        users = {u: {} for u in users}
    return {
        ascii_lower(str(name)): (flags if isinstance(flags, Mapping) else {}) for name, flags in users.items()
    }


def _includes(includes):
    out = {}
    for path, text in (includes or {}).items():
        out[path] = _text(text, f"include file {path}")
    return out


def own_pfr_keys(keys, domain, resolver):
    """Aliases whose own expansion (one level, with includes) needs pfr."""
    level = resolver.level
    known = resolver.levels.get(domain, {})
    out = set()
    for key in keys:
        lvl = known.get(key) or level(key, domain)
        if lvl.pfr:  # ok, or pfr items before :fail: or :defer:
            out.add(key)
    return out


_DELIVER_REASON = "the secondary expands it, delivers off-site addresses, punts local ones"
_PFR_REASON = "its own expansion has a pipe, file or directory: punted whole"
_PFR_STOP_REASON = "a pipe, file or directory comes before :{}:: punted whole, the primary decides"


def _lanes(raw_entries, domains, first, users, cache, fast=True):
    """Validate the entries and route the shapes most aliases have.

    Returns (entries, routes, pfr, rest): ``entries`` maps every key to its
    parsed list (for a one-item list: the item itself).  ``routes`` has every
    key in file order; a list of plain off-site addresses, of one pipe, file
    or directory (not /dev/null), or of off-site addresses and local users
    that are no alias (also as one :include:), is routed here already, as
    nothing else can change its route; ``pfr`` lists the keys of the pfr
    shape.  The others, listed in ``rest``, have the route None until the
    resolver fills it.  With ``fast`` False no entry takes a lane.
    """
    entries = {}
    routes = {}
    pfr = []
    rest = []
    for key, entry in raw_entries.items():
        # Plain data as parse_aliases returns it; anything else (other mappings
        # or sequences) takes the general path with its checks.
        if fast and isinstance(entry, dict) and "error" not in entry:
            items = entry.get("items")
            if isinstance(items, list) and len(items) == 1:
                item = items[0]
                if isinstance(item, dict):
                    kind = item.get("type")
                    value = item.get("value")
                    if isinstance(value, str):
                        if kind == "address" and '"' not in value and "\\" not in value:
                            at = value.rfind("@")
                            raw = value[at + 1 :]
                            dom = raw.lower() if raw.isascii() else ascii_lower(raw)
                            if dom not in domains:
                                entries[key] = item
                                if dom != raw:
                                    value = value[: at + 1] + dom
                                # _offsite_route([value]), written out: this is most aliases
                                routes[key] = {
                                    "action": "deliver",
                                    "leaves": [{"type": "address", "value": value}],
                                    "deliver": [value],
                                    "punt": [],
                                    "reason": _DELIVER_REASON,
                                }
                                continue
                        elif kind in PFR and value != "/dev/null" and _PLAIN_KEY.match(key):
                            entries[key] = item
                            routes[key] = {
                                "action": "punt",
                                "leaves": [{"type": kind, "value": value}],
                                "deliver": [],
                                "punt": [key + "@" + first],
                                "reason": _PFR_REASON,
                            }
                            pfr.append(key)
                            continue
                        elif kind in ("address", "local"):
                            entries[key] = item
                            routes[key] = None
                            # _users_route(items, ...) of one local part, written out: a user's name alias
                            if kind == "local" and value and '"' not in value and "\\" not in value:
                                child = value.lower() if value.isascii() else ascii_lower(value)
                                if "@" not in value and child in users and child not in raw_entries:
                                    routes[key] = _user_alias_route(child, value + "@" + first)
                                    continue
                            rest.append(key)
                            continue
                        elif kind == "include":
                            route = _include_route(value, cache, domains, users, raw_entries, first)
                            if route is not None:
                                entries[key] = _listed(items)
                                routes[key] = route
                                continue
            elif isinstance(items, list) and items:
                offsite = _all_offsite(items, domains)
                route = _offsite_route(offsite) if offsite is not None else None
                if route is None:
                    route = _users_route(items, domains, users, raw_entries, first)
                if route is not None:
                    entries[key] = _listed(items)
                    routes[key] = route
                    continue
        if isinstance(entry, Mapping):
            entries[key] = _rebuild(key, entry)
            routes[key] = None
            rest.append(key)
    return entries, routes, pfr, rest


def _listed(items):
    """The parsed list of items without a stop: what _rebuild() gives for them."""
    parsed = Parsed()
    parsed.items = items
    return parsed


def _users_route(items, domains, users, aliases, first):
    """Route of a list of plain off-site addresses and local users that are no
    alias (one item at least), else None.

    A local part may also be an alias of the pfr lane (punted whole, as
    _one_step() routes it).  What the general path gives for it: no other
    child is an alias, so nothing else can change the route, no finding
    concerns it, and its RCPT answer is accept (one child, off-site, a user
    or punted whole; or several).
    """
    deliver = set()
    local = set()  # the users, as leaves
    pfr = set()  # leaves of the pfr lane's aliases
    punt = set()
    for item in items:
        if not isinstance(item, dict):
            return None
        value = item.get("value")
        if not isinstance(value, str) or '"' in value or "\\" in value:
            return None
        kind = item.get("type")
        if kind == "local":  # in the first domain, as generated
            name = value
            shown = value + "@" + first
        elif kind == "address":
            at = value.rfind("@")
            if at < 0:
                return None
            dom, shown = _domain_shown(value, at)
            if dom not in domains:
                deliver.add(shown)
                continue
            name = value[:at]
        else:
            return None
        child = name.lower() if name.isascii() else ascii_lower(name)
        if not name or "@" in name:
            return None
        if child in aliases:  # an alias of the pfr lane, punted whole (a trolls-style archive)
            target = _pfr_lane_item(child, aliases[child])
            if target is None:
                return None
            pfr.add((target["type"], target["value"]))
            punt.add(shown)
            continue
        if child not in users:
            return None
        local.add(child)
        punt.add(shown)
    if pfr:
        leaves = pfr.union([("address", a) for a in deliver], [("local", u) for u in local])
        return _route_entry("deliver", leaves, deliver, punt, _DELIVER_REASON)
    if not deliver and not local:
        return None
    # _route_entry(), written out: the address leaves sort before the local ones
    addresses = sorted(deliver)
    leaves = [{"type": "address", "value": a} for a in addresses]
    leaves += [{"type": "local", "value": u} for u in sorted(local)]
    return {
        "action": "deliver",
        "leaves": leaves,
        "deliver": addresses,
        "punt": sorted(punt),
        "reason": _DELIVER_REASON,
    }


def _pfr_lane_item(key, entry):
    """The item of an alias that the pfr lane routes (one pipe, file or directory,
    not /dev/null, with a plain key), else None."""
    if not isinstance(entry, dict) or "error" in entry:
        return None
    items = entry.get("items")
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        return None
    item = items[0]
    value = item.get("value")
    if item.get("type") in PFR and isinstance(value, str) and value != "/dev/null" and _PLAIN_KEY.match(key):
        return item
    return None


def _user_alias_route(user, shown):
    """Route of an alias that is one local user (``shown`` as generated), no alias."""
    return {
        "action": "deliver",
        "leaves": [{"type": "local", "value": user}],
        "deliver": [],
        "punt": [shown],
        "reason": _DELIVER_REASON,
    }


def _include_route(path, cache, domains, users, aliases, first):
    """Route of an alias that is one :include: of a file that _users_route() routes, else None.

    Without include_directory, a file we have that parses without a stop is
    read as its items: no finding concerns it, and its RCPT answer is accept.
    """
    if cache.directory:
        return None
    sub = cache.get(path)
    if sub is None or sub.stop is not None:
        return None
    return _users_route(sub.items, domains, users, aliases, first)


def _domain_shown(value, at):
    """The lower-case domain of an address (its "@" at ``at``), and the address as routed."""
    raw = value[at + 1 :]
    dom = raw.lower() if raw.isascii() else ascii_lower(raw)
    return dom, (value if dom == raw else value[: at + 1] + dom)


def _all_offsite(items, domains):
    """The addresses as routed, if every item is a plain off-site address, else None."""
    values = []
    for item in items:
        if not isinstance(item, dict) or item.get("type") != "address":
            return None
        value = item.get("value")
        if not isinstance(value, str):
            return None
        values.append(value)
    return offsite_addresses(values, domains)


def secondary_routes(
    parsed, domains, includes=None, users=None, pfr_strategy="patch", source="aliases", include_directory=None
):
    """Routing table of a secondary MX for the parsed alias data."""
    with _NoGC():
        return _secondary_routes(parsed, domains, includes, users, pfr_strategy, source, include_directory)


def _secondary_routes(parsed, domains, includes, users, pfr_strategy, source, include_directory, fast=True):
    """secondary_routes(); ``fast=False`` turns every fast path off (for tests)."""
    with shortcuts(fast):
        return _routes(parsed, domains, includes, users, pfr_strategy, source, include_directory, fast)


def _routes(parsed, domains, includes, users, pfr_strategy, source, include_directory, fast):
    domains = _check_args(parsed, domains, includes, users, pfr_strategy)
    users = _users(users)
    cache = IncludeCache(_includes(includes), include_directory)
    domain_set = set(domains)
    first = domains[0]
    # The routes follow the alias file's order, then come the users without an alias.
    entries, routes, pfr_lane, rest = _lanes(parsed["entries"], domain_set, first, users, cache, fast)
    rest.sort()
    resolver = Resolver(entries, cache, users, domain_set, "patch", set())
    punt_set = {u for u in users if u not in entries or resolver.level(u, first).outcome == "decline"}
    if pfr_strategy == "precompute":
        # stock exim: every alias whose own expansion needs pfr is punted whole
        punt_set.update(own_pfr_keys(rest, first, resolver), pfr_lane)
        levels = resolver.levels
        resolver = Resolver(entries, cache, users, domain_set, pfr_strategy, punt_set)
        resolver.levels = levels
    else:
        resolver.punt_set = punt_set
    # the aliases of the pfr lane, for routes that reach them in one step
    resolver.pfr_lane = frozenset(pfr_lane) if fast else frozenset()
    # the aliases the other lanes routed, for the chains of aliases that lead to them
    resolver.routes = routes
    complex_keys = []
    levels = resolver.levels.setdefault(first, {})
    others = rest + [u for u in users if u not in entries]
    others.sort()
    resolver.others = set(others)  # the keys routed below: not by a lane
    for key in others:
        lvl = levels.get(key) if fast else None
        if lvl is not None and lvl.offsite:  # forwards only
            routes[key] = _offsite_route(lvl.offsite)
            continue
        try:
            routes[key] = _route_one(resolver, key, first, entries, fast)
        except TooComplex:
            complex_keys.append(key)
            routes[key] = _route_entry(
                "defer",
                [("defer", "alias data too complex to resolve")],
                set(),
                set(),
                "the model gave up: pathological loops",
            )
            resolver.budget = 200000
    findings = list(parsed.get("findings") or [])
    findings.extend(route_findings(parsed, entries, resolver, users, first, source, complex_keys, rest))
    keys = sorted(routes)
    rcpt, defer, unsafe = _rcpt_table(resolver, keys, resolver.others, domains, levels, fast)
    findings.extend(unsafe_key_findings(unsafe, parsed["entries"], source))
    punt = sorted(punt_set)
    return {
        "routes": routes,
        "punt": punt,
        "punt_addresses": [a for a in _addresses(punt, domains) if not _UNSAFE(a)],
        "punt_reasons": _punt_reasons(punt, users, entries, resolver, first),
        "valid": [a for a, answer in rcpt.items() if answer == "accept"],
        "rcpt": rcpt,
        "defer": defer,
        "users": sorted(users),
        "pfr_strategy": pfr_strategy,
        "findings": findings,
    }


def _route_entry(action, leaves, deliver, punt, reason):
    return {
        "action": action,
        "leaves": [{"type": t, "value": v} for t, v in (sorted(leaves) if len(leaves) > 1 else leaves)],
        "deliver": sorted(deliver) if deliver else [],
        "punt": sorted(punt) if punt else [],
        "reason": reason,
    }


_PLAIN_KEY = re.compile(r"[^\x00-\x20()<>@,;:\\\".\[\]\x7f]+(?:\.[^\x00-\x20()<>@,;:\\\".\[\]\x7f]+)*\Z")


def top_address(key, domain):
    """The address key@domain, quoted as RFC 5321 wants when the key needs it."""
    if _PLAIN_KEY.match(key):
        return key + "@" + domain
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"@' + domain


def _offsite_route(offsite):
    addresses = sorted(set(offsite)) if len(offsite) > 1 else offsite[:]
    return {
        "action": "deliver",
        "leaves": [{"type": "address", "value": a} for a in addresses],
        "deliver": addresses,
        "punt": [],
        "reason": _DELIVER_REASON,
    }


def _pfr_only(resolver, key, lvl, domain):
    """Route of an alias whose expansion is only pipes, files and directories, or None."""
    if lvl.outcome != "ok" or not lvl.pfr or any(c[0] not in PFR for c in lvl.children):
        return None
    if resolver.strategy != "patch" and key not in resolver.punt_set:
        return None
    if not _PLAIN_KEY.match(key):
        return None
    address = key + "@" + domain
    resolver.budget -= 1  # what resolver.route() spends on it, and remembers
    if resolver.budget < 0:
        raise TooComplex()
    res = Result()
    res.leaves = {(c[0], c[1]) for c in lvl.children}
    res.punt = {address}
    res.whole = address
    resolver.memo.setdefault(address, res)
    return _route_entry("punt", res.leaves, set(), res.punt, _PFR_REASON)


def _one_step(resolver, key, lvl):
    """Route of an alias each of whose children routes in one step, else None.

    One step: a plain off-site address; a local part that is no alias (a user's
    mailbox, or unknown); an alias of the fast lanes (one off-site address, or
    one pipe, file or directory, punted whole).  What resolver.route() gives
    for such an alias, without its bookkeeping: no loop can form (no child is
    an alias of its own), and nothing needs remembering.
    """
    if lvl.outcome != "ok" or lvl.pfr or (resolver.strategy != "patch" and key in resolver.punt_set):
        return None
    entries = resolver.entries
    domains = resolver.domains
    users = resolver.users
    lane = resolver.pfr_lane
    leaves = set()
    deliver = set()
    punt = set()
    unknown = []
    for _kind, value, item, origin in lvl.children:  # all addresses: lvl.pfr is False
        if '"' in value or "\\" in value:
            return None
        # offsite_shown(), written out: the domain is needed below too
        at = value.rfind("@")
        dom, shown = _domain_shown(value, at)
        if dom not in domains:
            leaves.add(("address", shown))
            deliver.add(shown)
            continue
        local = value[:at]
        child = local.lower() if local.isascii() else ascii_lower(local)
        target = entries.get(child)
        if target is None:
            if child in users:
                leaves.add(("local", child))
                punt.add(shown)
            else:
                leaves.add(("unknown", shown))
                unknown.append((value, item, origin))
            continue
        if not isinstance(target, dict):
            return None
        if child in lane:
            leaves.add((target["type"], target["value"]))
            punt.add(shown)
            continue
        offsite = offsite_shown(target["value"], domains) if target["type"] == "address" else None
        if offsite is None:
            return None
        leaves.add(("address", offsite))
        deliver.add(offsite)
    resolver.budget -= 1 + len(lvl.children)  # at most what resolver.route() spends on it
    if resolver.budget < 0:
        raise TooComplex()
    resolver.unknown[key] = unknown  # the findings need no second look at the children
    # The RCPT answer, the same in every domain: exim follows only a single child,
    # and a child here is off-site, no alias (a user or unknown) or a lane's alias.
    resolver.answers[key] = "reject" if len(lvl.children) == 1 and unknown else "accept"
    return _route_entry("deliver", leaves, deliver, punt, _DELIVER_REASON)


_CHAIN = 4  # aliases followed by _chain(), far below MAX_ANCESTORS


def _chain(resolver, key, lvl):
    """Route of an alias whose one child is a local part that leads, through
    aliases of one local part each, to an alias that a lane routed (off-site
    addresses and local users that are no alias, in the first domain), else None.

    What resolver.route() gives for it: that alias's leaves, deliveries and
    punts (no loop can form, no alias on the way punts whole), and the RCPT
    answer accept.
    """
    if lvl.outcome != "ok" or lvl.pfr:
        return None
    item = lvl.children[0][2]
    entries = resolver.entries
    routes = resolver.routes
    others = resolver.others
    lane = resolver.pfr_lane
    precompute = resolver.strategy != "patch"
    for _link in range(_CHAIN):
        value = item.get("value")
        if item.get("type") != "local" or '"' in value or "\\" in value:
            return None
        child = value.lower() if value.isascii() else ascii_lower(value)
        if child in routes and child not in others and child not in lane:  # routed by a lane
            break
        item = entries.get(child)
        if not isinstance(item, dict) or (precompute and child in resolver.punt_set):
            return None
    else:
        return None
    if precompute and key in resolver.punt_set:
        return None
    resolver.budget -= 2 + _link  # at most what resolver.route() spends on it
    if resolver.budget < 0:
        raise TooComplex()
    resolver.unknown[key] = []  # its child is an alias
    resolver.answers[key] = "accept"
    route = resolver.routes[child]
    return {
        "action": "deliver",
        "leaves": [{"type": leaf["type"], "value": leaf["value"]} for leaf in route["leaves"]],
        "deliver": route["deliver"][:],
        "punt": route["punt"][:],
        "reason": _DELIVER_REASON,
    }


_USER_REASON = "local user: mailbox on the primary"


def _user_route(resolver, key, address):
    """Route of a local user without an alias: what resolver.route() gives, directly."""
    resolver.budget -= 1
    if resolver.budget < 0:
        raise TooComplex()
    return {
        "action": "punt",
        "leaves": [{"type": "local", "value": key}],
        "deliver": [],
        "punt": [address],
        "reason": _USER_REASON,
    }


def _route_one(resolver, key, domain, entries, fast=True):
    lvl = None
    if key in entries:
        lvl = resolver.level(key, domain)
        if fast and lvl.offsite:  # the common case: forwards only
            return _offsite_route(lvl.offsite)
        route = _pfr_only(resolver, key, lvl, domain) if fast and lvl.pfr else None
        if route is not None:
            return route
        if fast:
            route = _one_step(resolver, key, lvl)
            if route is None and len(lvl.children) == 1:
                route = _chain(resolver, key, lvl)
            if route is not None:
                return route
    address = top_address(key, domain)
    if lvl is None and fast and key in resolver.users:
        return _user_route(resolver, key, address)
    res = resolver.route(address)
    leaves = res.leaves
    if res.blackhole and not leaves:
        leaves = {("blackhole", "")}
    if lvl is None or lvl.outcome == "decline":
        if key in resolver.users:
            return _route_entry("punt", leaves, set(), {address}, _USER_REASON)
        return _route_entry("fail", leaves, set(), set(), "unknown local part: rejected at RCPT time")
    if lvl.pfr and lvl.outcome in ("defer", "fail") and res.punt == {address}:
        return _route_entry("punt", leaves, set(), res.punt, _PFR_STOP_REASON.format(lvl.outcome))
    if lvl.outcome in ("defer", "blackhole"):
        reason = {
            "defer": "the alias defers: " + lvl.message,
            "blackhole": "the alias is :blackhole:, mail is discarded",
        }[lvl.outcome]
        return _route_entry(lvl.outcome, leaves, set(), set(), reason)
    if lvl.outcome == "fail":
        return _route_entry("fail", leaves, set(), set(), "the alias fails: " + lvl.message)
    if res.punt == {address} and not res.deliver and lvl.pfr:
        return _route_entry("punt", leaves, set(), res.punt, _PFR_REASON)
    return _route_entry(
        "deliver",
        leaves,
        res.deliver,
        res.punt,
        _DELIVER_REASON,
    )


def _addresses(keys, domains):
    """``key@domain`` for every key (in order), then every domain (in order)."""
    step = len(domains)
    out = [""] * (len(keys) * step)
    # One join and one split make all the addresses of a domain in C, when no
    # local part holds a newline (a quoted key may).
    joined = "\n".join(keys)
    bulk = joined.count("\n") == len(keys) - 1
    for pos, domain in enumerate(domains):
        suffix = "@" + domain
        if bulk and keys:
            out[pos::step] = (joined.replace("\n", suffix + "\n") + suffix).split("\n")
        else:
            out[pos::step] = [key + suffix for key in keys]
    return out


def _punt_reasons(punt, users, entries, resolver, first):
    """Why each punted local part goes to the primary: user, procmail, forward or pfr."""
    out = {}
    for key in punt:
        if key in entries and resolver.level(key, first).outcome != "decline":
            out[key] = "pfr"
            continue
        flags = users.get(key) or {}
        out[key] = "procmail" if flags.get("procmail") else "forward" if flags.get("forward") else "user"
    return out


_ACCEPT = ("accept", "")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]").search


def _rcpt_table(resolver, keys, others, domains, levels, fast=True):
    """What the primary answers at RCPT time (``verify = recipient``) for every
    known address: ``rcpt`` {address: accept|defer|reject}, ``defer`` {address:
    reason}, and the unsafe addresses left out of both (a control character).

    Each address is verified in its own domain.  What decides for most aliases
    does not depend on the domain (the outcome of the alias's own list, and
    whether it has exactly one child, and a chain of such aliases written as
    bare local parts stays in the incoming domain), so it is found once per
    local part; other chains of one-child aliases are followed per domain.
    ``keys`` not in ``others`` are the fast lanes' aliases (forwards only, or
    one pipe, file or directory): accepted.
    """
    first = domains[0]
    step = len(domains)
    entries = resolver.entries
    column = []  # per key: the answer in every domain, or None
    deferred = []  # (position, reason) of the keys that defer in every domain
    walked = {}  # position -> [(answer, reason) per domain]
    users = resolver.users
    answers = resolver.answers
    if fast:
        memo = {}
        for pos, key in enumerate(keys):
            if key not in others:
                column.append("accept")
                continue
            if key not in entries:  # a user without an alias
                column.append("accept" if key in users else "reject")
                continue
            got = answers.get(key)
            if got is not None:  # known from its one-step route
                column.append(got)
                continue
            got = _rcpt_class(resolver, key, levels, first, memo)
            if got is None:
                walked[pos] = [_verify(resolver, key, domain, entries) for domain in domains]
                column.append(None)
                continue
            column.append(got[0])
            if got[0] == "defer":
                deferred.append((pos, got[1]))
    else:
        for pos, key in enumerate(keys):
            walked[pos] = [_verify(resolver, key, domain, entries) for domain in domains]
            column.append(None)
    answers = [None] * (len(keys) * step)
    for dpos in range(step):
        if walked:
            column = column[:]
            for pos, per_domain in walked.items():
                column[pos] = per_domain[dpos][0]
        answers[dpos::step] = column
    addresses = _addresses(keys, domains)
    rcpt = dict(zip(addresses, answers))  # noqa: B905 (equal lengths)
    defer = {}
    for pos, reason in deferred:
        for dpos in range(step):
            defer[addresses[pos * step + dpos]] = reason
    for pos, per_domain in walked.items():
        for dpos, (answer, reason) in enumerate(per_domain):
            if answer == "defer":
                defer[addresses[pos * step + dpos]] = reason
    unsafe = []
    if _UNSAFE("".join(keys)) or _UNSAFE("".join(domains)):
        unsafe = [address for address in addresses if _UNSAFE(address)]
        for address in unsafe:
            del rcpt[address]
            defer.pop(address, None)
    if len(defer) > 1:  # in the order of rcpt
        defer = {address: defer[address] for address in rcpt if address in defer}
    return rcpt, defer, unsafe


_IN_PROGRESS = ("in progress", "")


def _rcpt_class(resolver, key, levels, first, memo, depth=0):
    """(answer, reason) of a key when it is the same in every domain, else None.

    An alias whose only child is a bare local part (qualified with the incoming
    domain) answers what that local part answers, one level deeper; ``memo``
    keeps each key's (answer, reason, height), a key met again while it is
    being answered is a loop (None: followed per domain).
    """
    got = memo.get(key)
    if got is not None:
        if got is _IN_PROGRESS or got[0] is None or depth + got[2] > MAX_ANCESTORS:
            return None
        return got[:2]
    entries = resolver.entries
    if key not in entries:
        return _ACCEPT if key in resolver.users else ("reject", "")  # a user without an alias
    lvl = levels.get(key) or resolver.level(key, first)
    outcome = lvl.outcome
    height = 0
    if outcome == "ok":
        if lvl.pfr or len(lvl.children) != 1 or lvl.offsite:
            answer = _ACCEPT
        else:
            _kind, value, item, _origin = lvl.children[0]
            answer = None
            plain = '"' not in value and "\\" not in value
            if item.get("type") == "local" and plain and depth < MAX_ANCESTORS:
                child = ascii_lower(item["value"])
                if child not in entries:
                    answer = _ACCEPT if child in resolver.users else ("reject", "")
                    height = 1
                elif child != key:
                    memo[key] = _IN_PROGRESS
                    answer = _rcpt_class(resolver, child, levels, first, memo, depth + 1)
                    height = memo[child][2] + 1 if answer is not None else 0
    elif outcome == "decline":
        answer = _ACCEPT if key in resolver.users else ("reject", "")
    else:
        answer = _stop_answer(lvl)
    memo[key] = (None, "", 0) if answer is None else (answer[0], answer[1], height)
    return answer


def _stop_answer(lvl):
    if lvl.outcome == "fail":
        return ("reject", lvl.message)
    if lvl.outcome == "defer":
        return ("defer", _one_line(lvl.message) or "forced defer")
    return _ACCEPT  # :blackhole:


def _one_line(text):
    return " ".join(text.split())


def _verify(resolver, key, domain, entries):
    """(answer, reason) of ``verify = recipient`` for key@domain on the primary.

    verify.c follows a redirection only while it has exactly one child; more
    children (or a pipe, file or directory) accept.  The aliases router is
    skipped for an address that is its own ancestor (route.c), which then goes
    to the local users; more than 101 ancestors defer.
    """
    address = top_address(key, domain)
    seen = set()
    users = resolver.users
    for _depth in range(MAX_ANCESTORS + 1):
        k, dom, folded, _shown = resolver.info(address)
        if dom not in resolver.domains:
            return _ACCEPT  # the remote router
        if folded not in seen and k in entries:
            lvl = resolver.level(k, dom)
            if lvl.outcome == "ok":
                if lvl.pfr or len(lvl.children) != 1:
                    return _ACCEPT
                seen.add(folded)
                address = lvl.children[0][1]
                continue
            if lvl.outcome != "decline":
                return _stop_answer(lvl)
        return _ACCEPT if k in users else ("reject", "")
    return ("defer", "routing loop: more than 101 ancestors")


__all__ = ["PFR", "AliasInputError", "parse_aliases", "secondary_routes"]

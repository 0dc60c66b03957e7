# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Route addresses through the aliases to final leaves, as exim does.

Private to smartmx.exim.  The router chain modelled is the primary's:
off-site domains -> remote; local domains -> the aliases redirect router
(qualify_preserve_domain), then local users, else unrouteable.

Exim rules kept here (exim 4.96):

* route.c route_address(): a router is skipped for an address when an
  ancestor with the same address (compared caselessly) was routed by it;
  an address with more than 101 ancestors is deferred ("routing loop");
* verify.c (exim -bt) lists every routed address; duplicates are only
  marked, so leaves are a set;
* redirect.c: :fail: keeps the children generated before it, :defer: and
  :blackhole: drop them, an empty list declines to the next router;
* the secondary (patched: transport_pfr) punts an address whole when the
  children generated for it hold a pipe, file or directory, also when
  :fail: or :defer: follows them.

Results of addresses that are not on a redirection cycle are memoised, so
acyclic alias data is resolved in linear time.
"""

from __future__ import absolute_import, division, print_function

from ._alias_address import ascii_lower, split_address
from ._alias_expand import PFR, one_level, single_level
from ._alias_shortcuts import SHORTCUTS

MAX_ANCESTORS = 101
_INF = 1 << 30


def offsite_shown(value, domains):
    """The address as routed (domain lower-cased) if ``value`` is a plain
    off-site address (no quotes, no backslash), else None."""
    if '"' in value or "\\" in value:
        return None
    at = value.rfind("@")
    raw = value[at + 1 :]
    dom = raw.lower() if raw.isascii() else ascii_lower(raw)
    if dom in domains:
        return None
    return value if dom == raw else value[: at + 1] + dom


def offsite_addresses(values, domains):
    """offsite_shown() of every value, or None if one is not a plain off-site address."""
    out = []
    for value in values:
        shown = offsite_shown(value, domains)
        if shown is None:
            return None
        out.append(shown)
    return out


class TooComplex(Exception):
    """The work budget ran out (pathological cyclic data)."""


class Result:
    """What routing one address produced."""

    __slots__ = ("blackhole", "cut", "deliver", "height", "hit", "leaves", "punt", "whole")

    def __init__(self):
        self.leaves = set()
        self.deliver = set()
        self.punt = set()
        self.blackhole = False
        self.hit = _INF  # smallest ancestor depth matched by a loop skip below
        self.height = 0
        self.cut = False  # the ancestor limit deferred something below
        self.whole = None  # the address, as shown, when it is punted whole

    def copy_for(self, shown):
        """This result for the same address generated with another case."""
        res = Result()
        res.leaves, res.deliver, res.blackhole = self.leaves, self.deliver, self.blackhole
        res.hit, res.height, res.cut = self.hit, self.height, self.cut
        res.punt = {shown}
        res.whole = shown
        return res

    def absorb(self, other, secondary=True):
        self.leaves |= other.leaves
        if secondary:
            self.deliver |= other.deliver
            self.punt |= other.punt
        self.blackhole = self.blackhole or other.blackhole
        if other.hit < self.hit:
            self.hit = other.hit
        if other.height + 1 > self.height:
            self.height = other.height + 1
        self.cut = self.cut or other.cut


class Resolver:
    """Resolve addresses against one set of alias data."""

    def __init__(self, entries, cache, users, domains, strategy, punt_set, budget=3000000):
        self.entries = entries  # folded key -> Parsed, or the item of a one-item list
        self.cache = cache
        self.users = users  # folded name -> flags
        self.domains = domains  # set of lower-case local domains
        self.strategy = strategy
        self.punt_set = punt_set
        self.levels = {}
        self.memo = {}
        self.path = {}  # folded address -> depth, the ancestors being routed
        self.budget = budget
        self.loops = set()  # (parent key, child address, child is a user)
        self.fixed = {}  # address -> Result of addresses no alias handles
        self.infos = {}
        self.depth_cut = set()  # parent keys whose children hit the ancestor limit
        self.pfr_lane = frozenset()  # keys whose list is one pipe, file or directory (not /dev/null)
        self.routes = {}  # key -> route, of the table being made (the lanes' routes are final)
        self.others = set()  # the keys not routed by a lane
        self.unknown = {}  # key -> [(value, item, origin)]: unknown local children seen by a one-step route
        self.answers = {}  # key -> RCPT answer, from a one-step route
        self.fast = SHORTCUTS.on  # the inline off-site children, offsite levels, lower-case infos

    def level(self, key, domain):
        per = self.levels.get(domain)
        if per is None:
            per = self.levels[domain] = {}
        got = per.get(key)
        if got is None:
            parsed = self.entries[key]
            if isinstance(parsed, dict):
                got = per[key] = single_level(parsed, domain)
                if parsed["type"] == "address" and self.fast:  # a local part is never off-site
                    got.offsite = self._offsite(got.children)
                return got
            got = per[key] = one_level(parsed, domain, self.cache)
            if got.outcome == "ok" and self.fast:
                got.offsite = self._offsite(got.children)
        return got

    def _offsite(self, children):
        """Shown addresses if every child is a plain off-site address, else None."""
        for child in children:
            if child[0] != "address":
                return None
        return offsite_addresses([child[1] for child in children], self.domains)

    def info(self, address):
        """(lookup key, lower-case domain, folded address, address as shown) of an address."""
        got = self.infos.get(address)
        if got is None:
            at = address.rfind("@")
            plain = '"' not in address and "\\" not in address
            if at >= 0 and plain and self.fast and address.isascii() and address.islower():
                # lower-case and unquoted: every part is the address's own text
                got = self.infos[address] = (address[:at], address[at + 1 :], address, address)
                return got
            local, domain = split_address(address)
            shown = address[: address.rfind("@")] + "@" + domain
            got = self.infos[address] = (ascii_lower(local), domain, ascii_lower(address), shown)
        return got

    def route(self, address, depth=0, parent=None):
        """Route one generated address at ``depth`` ancestors."""
        self.budget -= 1
        if self.budget < 0:
            raise TooComplex()
        if depth > MAX_ANCESTORS:
            res = Result()
            res.leaves.add(("defer", ""))  # no message is set (-bt prints "unknown error")
            res.cut = True
            if parent is not None:
                self.depth_cut.add(parent)
            return res
        res = self.fixed.get(address)
        if res is not None:
            return res
        key, domain, folded, shown = self.info(address)
        if domain not in self.domains:
            res = Result()
            res.leaves.add(("address", shown))
            res.deliver.add(shown)
            self.fixed[address] = res
            return res
        anc = self.path.get(folded)
        if anc is not None:
            res = self._user(Result(), key, shown)
            res.hit = anc
            if parent is not None:
                self.loops.add((parent, shown, key in self.users))
            return res
        # Not at the top: a remembered result shows the address as it was first
        # generated (its case), while the top address is the one the table is about.
        memo = self.memo.get(folded) if depth else None
        if memo is not None and depth + memo.height <= MAX_ANCESTORS:
            if memo.whole is not None and memo.whole != shown:
                return memo.copy_for(shown)  # punted whole: as generated here
            return memo
        if key in self.entries:
            res = Result()
            if self._alias(res, key, domain, folded, shown, depth):
                if res.hit > depth and not res.cut:
                    self.memo[folded] = res
                return res
        # Not an alias (or an empty one): never an ancestor, so context-free.
        res = self._user(Result(), key, shown)
        self.fixed[address] = res
        return res

    def _user(self, res, key, shown):
        if key in self.users:
            res.leaves.add(("local", key))
            res.punt.add(shown)
        else:
            res.leaves.add(("unknown", shown))
        return res

    def _alias(self, res, key, domain, folded, shown, depth):
        """Route through the aliases router; False if it declines."""
        lvl = self.level(key, domain)
        if lvl.outcome == "decline":
            return False
        # precompute: the punt list; patch: pfr in its own list (also before :fail: or :defer:)
        whole = key in self.punt_set if self.strategy == "precompute" else lvl.pfr
        if lvl.outcome == "defer":
            res.leaves.add(("defer", lvl.message))
            if whole:  # a pfr item before :defer:: the primary decides
                res.punt = {shown}
                res.whole = shown
            return True
        if lvl.outcome == "blackhole":
            res.blackhole = True
            return True
        if lvl.outcome == "fail":
            res.leaves.add(("fail", lvl.message))
        self.path[folded] = depth
        try:
            fixed = self.fixed
            child_depth = depth + 1
            leaves, domains = res.leaves, self.domains
            fast = self.fast
            for kind, value, _item, _origin in lvl.children:
                if kind in PFR:
                    res.leaves.add((kind, value))
                    continue
                if fast and child_depth <= MAX_ANCESTORS and '"' not in value and "\\" not in value:
                    # fast path for a plain off-site address: no Result of its own
                    at = value.rfind("@")
                    raw = value[at + 1 :]
                    dom = raw.lower() if raw.isascii() else ascii_lower(raw)
                    if dom not in domains:
                        child = value if dom == raw else value[: at + 1] + dom
                        leaves.add(("address", child))
                        if not whole:
                            res.deliver.add(child)
                        if res.height < 1:
                            res.height = 1
                        continue
                got = fixed.get(value) if child_depth <= MAX_ANCESTORS else None
                if got is None:
                    got = self.route(value, child_depth, key)
                res.absorb(got, secondary=not whole)
        finally:
            del self.path[folded]
        if whole:
            res.punt = {shown}
            res.deliver = set()
            res.whole = shown
        return True

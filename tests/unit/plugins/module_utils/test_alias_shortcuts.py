# SPDX-License-Identifier: GPL-3.0-or-later
"""The switch ``fast=False`` really turns every fast path off.

Each shortcut is wrapped in a counter.  On a corpus that takes every one of them,
a run with the shortcuts on must reach each counter, and a run with them off
must reach none, and both runs give the same result.  So the property test that
compares the two (test_alias_properties.py) compares against the general path
only, and cannot pass without doing so.
"""

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils import (
    _alias_parse,
    _alias_resolve,
    _aliases,
)
from ansible_collections.smartmx.exim.plugins.module_utils._alias_shortcuts import SHORTCUTS

from .alias_helpers import DOMAINS, USERS

CORPUS = (
    "fwd: x@R.example\n"  # FAST_LINE, off-site lane
    "two: x@r.example, y@s.example\n"  # FAST_LINE, off-site list lane
    "pipe: |/bin/pipe\n"  # FAST_LINE, pfr lane
    "pipes: |/bin/a, |/bin/b\n"  # _pfr_only
    "team: alice, pipe, fwd, nobody, z@r.example\n"  # one-step route
    "chain: team\n"  # one local child: RCPT followed per domain
    "multi: a@r.example,\n  b@s.example\n"  # continuation: _fast_list
    "one: \n  alice\n"  # _ONE
    'quoted: "|/bin/quoted"\n  \n'  # _QUOTED_PFR (not a one-line entry)
    'hard: "x y"@r.example, plain@r.example\n'  # _SIMPLE inside the general reader
    "deep: chain, Mixed@example.org\n"  # resolver: inline off-site children, info()
    "mixed: q@r.example, fwd\n"
    "inc: :include:/l/inc\n"
    "copy: \\alice, bob@example.net, c@r.example\n"  # users lane
    "staff: :include:/l/staff\n"  # users lane, in an include file
    "hop: hop2\nhop2: copy\n"  # a chain to the users lane
    "split: alice, pipe\n"  # users lane, with an alias of the pfr lane
)
INCLUDES = {"/l/inc": "m@r.example\nteam\n", "/l/staff": "alice\nm@r.example\n"}


class _Counter:
    def __init__(self):
        self.calls = 0


def _count(monkeypatch, module, name):
    counter = _Counter()
    real = getattr(module, name)
    if name == "_SIMPLE":  # a compiled pattern, used as _SIMPLE.match

        class _Pattern:
            def match(self, *args):
                counter.calls += 1
                return real.match(*args)

        monkeypatch.setattr(module, name, _Pattern())
        return counter

    def wrapper(*args, **kw):
        counter.calls += 1
        return real(*args, **kw)

    monkeypatch.setattr(module, name, wrapper)
    return counter


SHORTCUT_NAMES = [
    (_aliases, "FAST_LINE"),
    (_alias_parse, "_ONE"),
    (_alias_parse, "_fast_list"),
    (_alias_parse, "_QUOTED_PFR"),
    (_alias_parse, "_SIMPLE"),
    (_aliases, "_all_offsite"),  # the off-site list lane
    (_aliases, "_offsite_route"),  # off-site routes without the resolver
    (_aliases, "_users_route"),  # lists of users and off-site addresses
    (_aliases, "_include_route"),  # the same in one include file
    (_aliases, "_user_alias_route"),  # the same, one local user
    (_aliases, "_pfr_lane_item"),  # the pfr lane's aliases in the users lane
    (_aliases, "_chain"),  # chains of aliases to those lanes
    (_aliases, "_pfr_only"),
    (_aliases, "_one_step"),
    (_aliases, "_rcpt_class"),  # RCPT answers shared by every domain
    (_aliases, "_user_route"),  # users without an alias
    (_alias_resolve.Resolver, "_offsite"),  # levels' off-site addresses
]


def _run(fast):
    parsed = _aliases._parse_aliases(CORPUS, "aliases", fast=fast)
    table = _aliases._secondary_routes(parsed, DOMAINS, INCLUDES, USERS, "patch", "aliases", None, fast=fast)
    return parsed, table


@pytest.fixture
def counted(monkeypatch):
    counters = {name: _count(monkeypatch, module, name) for module, name in SHORTCUT_NAMES}
    routed = []  # (address, plain off-site) of every Resolver.route() call
    infos = []  # addresses given to Resolver.info() without a cached answer
    splits = _count(monkeypatch, _alias_resolve, "split_address")
    route, info = _alias_resolve.Resolver.route, _alias_resolve.Resolver.info

    def counting_route(self, address, *args, **kw):
        routed.append(_alias_resolve.offsite_shown(address, self.domains) is not None)
        return route(self, address, *args, **kw)

    def counting_info(self, address):
        if address not in self.infos:
            infos.append(address)
        return info(self, address)

    monkeypatch.setattr(_alias_resolve.Resolver, "route", counting_route)
    monkeypatch.setattr(_alias_resolve.Resolver, "info", counting_info)
    return counters, routed, infos, splits


def _reset(counted):
    counters, routed, infos, splits = counted
    for counter in counters.values():
        counter.calls = 0
    routed.clear()
    infos.clear()
    splits.calls = 0


def test_every_shortcut_is_taken_with_the_switch_on(counted):
    counters, routed, infos, splits = counted
    _run(True)
    assert SHORTCUTS.on
    assert {name: c.calls for name, c in counters.items() if not c.calls} == {}
    assert not any(routed)  # plain off-site children: inline, never through route()
    assert splits.calls < len(infos)  # lower-case plain addresses: not parsed


def test_no_shortcut_is_taken_with_the_switch_off(counted):
    counters, routed, infos, splits = counted
    fast = _run(True)
    _reset(counted)
    slow = _run(False)
    assert SHORTCUTS.on  # restored
    assert {name: c.calls for name, c in counters.items() if c.calls} == {}
    assert any(routed)  # plain off-site children go through route()
    assert splits.calls == len(infos)  # every address parsed
    assert fast == slow


def test_the_switch_is_restored_after_an_error():
    with pytest.raises(_aliases.AliasInputError):
        _aliases._secondary_routes({}, DOMAINS, {}, USERS, "patch", "aliases", None, fast=False)
    assert SHORTCUTS.on

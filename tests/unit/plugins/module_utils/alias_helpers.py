# SPDX-License-Identifier: GPL-3.0-or-later
"""Small helpers shared by the alias model tests."""

from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases, secondary_routes

DOMAINS = ["example.org", "example.net"]
USERS = {
    "alice": {"procmail": False, "forward": False},
    "bob": {"procmail": True, "forward": False},
    "carol": {"procmail": False, "forward": True},
    "adb": {"procmail": False, "forward": False},
}


def table(text, includes=None, users=None, strategy="patch", **kw):
    parsed = parse_aliases(text)
    return secondary_routes(
        parsed,
        DOMAINS,
        includes=includes or {},
        users=USERS if users is None else users,
        pfr_strategy=strategy,
        **kw,
    )


def leaves(text, local_part, **kw):
    route = table(text, **kw)["routes"][local_part]
    return {(leaf["type"], leaf["value"]) for leaf in route["leaves"]}


def codes(result):
    return sorted({f["code"] for f in result["findings"]})

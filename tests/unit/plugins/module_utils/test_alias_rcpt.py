# SPDX-License-Identifier: GPL-3.0-or-later
"""The RCPT answers of secondary_routes (``rcpt``, ``defer``, ``valid``), per domain,
and the punting of pfr items that come before :fail: or :defer:."""

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils import _aliases
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases, secondary_routes

from .alias_helpers import DOMAINS, table

ORG, NET = "example.org", "example.net"
CROSS = "a: b@example.org\nb: a@example.net\n"


def _routes(text, domains, users, **kw):
    return secondary_routes(parse_aliases(text), domains, includes={}, users=users, **kw)


@pytest.mark.parametrize("domains", [[ORG, NET], [NET, ORG]])
def test_cross_domain_answers_are_computed_per_domain(domains):
    # a@org -> b@org -> a@net -> b@org (its own ancestor: no alias; b is no user): refused;
    # a@net -> b@org -> a@net (its own ancestor): the user a.  Whatever the order of domains.
    result = _routes(CROSS, domains, {"a": {}})
    assert result["rcpt"] == {
        "a@example.org": "reject",
        "a@example.net": "accept",
        "b@example.org": "reject",
        "b@example.net": "accept",
    }
    assert set(result["valid"]) == {"a@example.net", "b@example.net"}


@pytest.mark.parametrize(
    ("text", "includes", "reason"),
    [
        ("k: :defer: moving to lists.example\n", {}, "moving to lists.example"),
        ("k: :defer:\n", {}, "forced defer"),
        ("k: a@r.example, <broken\n", {}, 'error in redirect data: "@" or "." expected after "broken"'),
        ("k: :include:/l/none\n", {}, "failed to open included file /l/none"),
        ("k: :include:/l/a\n", {"/l/a": ":include:/l/b\n", "/l/b": ":include:/l/a\n"}, ":include: loop"),
        ("k: # Exim filter\n", {}, "error in filter data"),
        ("k: j\nj: :defer: later\n", {}, "later"),  # one child: followed
    ],
)
def test_what_defers_on_the_primary_defers_with_its_reason(text, includes, reason):
    result = table(text, includes=includes)
    for domain in DOMAINS:
        assert result["rcpt"][f"k@{domain}"] == "defer"
        assert reason in result["defer"][f"k@{domain}"]
        assert "\n" not in result["defer"][f"k@{domain}"]
        assert f"k@{domain}" not in result["valid"]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("k: :fail: gone\n", "reject"),
        ("k: a@r.example, :fail: gone\n", "reject"),  # the router fails, whatever came before
        ("k: nobody\n", "reject"),  # one child, unroutable
        ("k: j\nj: :fail: gone\n", "reject"),  # one child: followed
        ("k: j, x@r.example\nj: :fail: gone\n", "accept"),  # two children: not followed
        ("k: nobody, x@r.example\n", "accept"),
        ("k: alice\n", "accept"),
        ("k: :blackhole:\n", "accept"),
        ("k: |/bin/x\n", "accept"),
        ("k: \\k\n", "reject"),  # its own ancestor, and no user
        ("alice: \\alice\n", "accept"),
        ("k:\n", "reject"),  # declines; no user
    ],
)
def test_fail_and_unknown_targets_reject_where_exim_fails_at_rcpt(text, answer):
    result = table(text)
    key = text.split(":")[0]
    for domain in DOMAINS:
        assert result["rcpt"][f"{key}@{domain}"] == answer
        assert (f"{key}@{domain}" in result["valid"]) == (answer == "accept")


def test_users_without_an_alias_accept_and_unknown_addresses_are_absent():
    result = table("k: x@r.example\n")
    for domain in DOMAINS:
        for user in ("alice", "bob", "carol", "adb"):
            assert result["rcpt"][f"{user}@{domain}"] == "accept"
        assert "nobody@" + domain not in result["rcpt"]
    assert set(result["rcpt"]) == {f"{k}@{d}" for k in ("k", "alice", "bob", "carol", "adb") for d in DOMAINS}


def test_punt_addresses_are_the_punt_list_per_domain():
    result = table("mixed: a@r.example, |/bin/x\nalice: \\alice, a@r.example\n", strategy="precompute")
    assert result["punt"] == ["adb", "bob", "carol", "mixed"]
    assert result["punt_addresses"] == [f"{k}@{d}" for k in result["punt"] for d in DOMAINS]
    assert result["punt_reasons"] == {"adb": "user", "bob": "procmail", "carol": "forward", "mixed": "pfr"}


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
@pytest.mark.parametrize("stop", [":fail: gone", ":defer: later"])
def test_pfr_before_fail_or_defer_punts_the_alias_whole(strategy, stop):
    # The primary runs the pipe of inner for mail reaching it through outer (and, for
    # :fail:, bounces inner); the secondary must hand inner whole to the primary.
    result = table(f"outer: x@r.example, inner\ninner: |/bin/x, {stop}\n", strategy=strategy)
    outer, inner = result["routes"]["outer"], result["routes"]["inner"]
    assert (outer["action"], outer["deliver"], outer["punt"]) == (
        "deliver",
        ["x@r.example"],
        ["inner@example.org"],
    )
    assert (inner["action"], inner["deliver"], inner["punt"]) == ("punt", [], ["inner@example.org"])
    assert {"type": "pipe", "value": "|/bin/x"} in outer["leaves"] or stop.startswith(":defer:")
    assert ("inner" in result["punt"]) == (strategy == "precompute")
    assert result["rcpt"]["outer@example.org"] == "accept"
    assert result["rcpt"]["inner@example.org"] == ("reject" if stop.startswith(":fail:") else "defer")
    found = [f for f in result["findings"] if f["code"] == "pfr-before-stop"]
    assert [(f["local_part"], f["line"]) for f in found] == [("inner", 2)]


# The cases of the review, in the result keys that existed before rcpt: they fail
# on the model that copied the first domain's answers and lost the pipe before :fail:.
@pytest.mark.parametrize("domains", [[ORG, NET], [NET, ORG]])
def test_review_valid_is_per_domain(domains):
    valid = _routes(CROSS, domains, {"a": {}})["valid"]
    assert sorted(valid) == ["a@example.net", "b@example.net"]


def test_review_pipe_before_fail_is_punted_with_a_finding():
    result = table("outer: x@r.example, inner\ninner: |/bin/x, :fail: gone\n")
    assert result["routes"]["outer"]["punt"] == ["inner@example.org"]
    assert result["routes"]["inner"]["action"] == "punt"
    assert "pfr-before-stop" in {f["code"] for f in result["findings"]}


def _rcpt(text, fast):
    parsed = _aliases._parse_aliases(text, "aliases", fast=fast)
    return _aliases._secondary_routes(parsed, DOMAINS, {}, {"alice": {}}, "patch", "aliases", None, fast=fast)


@pytest.mark.parametrize(
    "text",
    [
        "k: j\nj: i\ni: alice\n",
        "a: b\nb: a\nalice: a\n",  # a loop of one-child aliases, and a way into it
        "a: b\nb: c\nc: b\n",
        "k: j@example.net\nj: alice\n",  # a qualified child: per domain
        "".join(f"a{n}: a{n + 1}\n" for n in range(104)) + "a104: alice\n",  # deeper than 101
    ],
)
def test_one_child_chains_answer_alike_with_and_without_shortcuts(text):
    fast, slow = _rcpt(text, True), _rcpt(text, False)
    assert fast["rcpt"] == slow["rcpt"]
    assert fast["defer"] == slow["defer"]


def test_a_chain_deeper_than_101_ancestors_defers():
    text = "".join(f"a{n}: a{n + 1}\n" for n in range(104)) + "a104: alice\n"
    rcpt = _rcpt(text, True)["rcpt"]
    assert rcpt["a0@example.org"] == "defer"  # alice would be the 105th ancestor
    assert rcpt["a4@example.org"] == "accept"  # alice at 101
    assert rcpt["a3@example.org"] == "defer"

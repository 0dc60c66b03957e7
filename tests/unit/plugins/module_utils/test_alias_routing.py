# SPDX-License-Identifier: GPL-3.0-or-later
"""One test per routing rule: leaves on the primary, actions on the secondary, findings."""

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import (
    AliasInputError,
    parse_aliases,
    secondary_routes,
)

from .alias_helpers import DOMAINS, USERS, codes, leaves, table

TROLLS = "trolls: adb, nemo@sea.example, pk@k.example, trolls-archive\ntrolls-archive: /com/archive/trolls\n"


def test_trolls_split_delivers_forwards_and_punts_the_archive():
    route = table(TROLLS)["routes"]["trolls"]
    assert route["action"] == "deliver"
    assert route["deliver"] == ["nemo@sea.example", "pk@k.example"]
    assert route["punt"] == ["adb@example.org", "trolls-archive@example.org"]
    assert {(leaf["type"], leaf["value"]) for leaf in route["leaves"]} == {
        ("local", "adb"),
        ("address", "nemo@sea.example"),
        ("address", "pk@k.example"),
        ("file", "/com/archive/trolls"),
    }


def test_mixed_alias_is_punted_whole_with_a_split_suggestion():
    result = table("trolls: adb, nemo@sea.example, /com/archive/trolls\n")
    route = result["routes"]["trolls"]
    assert (route["action"], route["deliver"], route["punt"]) == ("punt", [], ["trolls@example.org"])
    mixed = [f for f in result["findings"] if f["code"] == "mixed-alias"]
    assert (
        mixed[0]["suggestion"]
        == "trolls: adb, nemo@sea.example, trolls-archive\ntrolls-archive: /com/archive/trolls"
    )
    assert mixed[0]["line"] == 1


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_users_are_punted(user):
    route = table("")["routes"][user]
    assert (route["action"], route["punt"]) == ("punt", [f"{user}@example.org"])


def test_pipe_alias_is_punted_whole():
    route = table('list: "|/usr/lib/mailman/mail/mailman post list"\n')["routes"]["list"]
    assert route["action"] == "punt"


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
@pytest.mark.parametrize(
    "second", ['"|/usr/lib/mailman/mail/mailman post list"', "a@r.example, /com/archive/list"]
)
def test_alias_reached_first_in_other_case_is_still_punted_under_its_own_name(strategy, second):
    # "a" sorts first and generates "List@..."; the route of "list" is about list@...
    route = table(f"a: List\nlist: {second}\n", strategy=strategy)["routes"]["list"]
    assert (route["action"], route["deliver"], route["punt"]) == ("punt", [], ["list@example.org"])


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
@pytest.mark.parametrize("second", ['"|/bin/cmd a,b"', "a@r.example, /com/archive/list"])
def test_alias_punted_whole_is_punted_in_the_case_it_was_generated(strategy, second):
    # "list" is routed first (it sorts first, or takes a fast lane); "list-archive"
    # generates "List@...", and the secondary hands over the address it generated.
    route = table(f"list: {second}\nlist-archive: List\n", strategy=strategy)["routes"]["list-archive"]
    assert route["punt"] == ["List@example.org"]


def test_pfr_in_include_punts_and_is_reported():
    result = table("team: :include:/l/team\n", includes={"/l/team": "a@r.example\n/var/arch/team\n"})
    assert result["routes"]["team"]["action"] == "punt"
    finding = next(f for f in result["findings"] if f["code"] == "pfr-in-include")
    assert (finding["file"], finding["line"]) == ("/l/team", 2)


def test_patch_punt_list_holds_only_users_precompute_adds_pfr_aliases():
    text = TROLLS + "mixed: a@r.example, |/bin/x\nalice: \\alice, a@r.example\n"
    patch, pre = table(text), table(text, strategy="precompute")
    assert patch["punt"] == ["adb", "bob", "carol"]
    assert pre["punt"] == ["adb", "bob", "carol", "mixed", "trolls-archive"]
    for key in patch["routes"]:
        a, b = patch["routes"][key], pre["routes"][key]
        assert (a["action"], a["deliver"], a["punt"], a["leaves"]) == (
            b["action"],
            b["deliver"],
            b["punt"],
            b["leaves"],
        )


def test_alias_to_itself_keeps_a_local_copy():
    route = table("alice: \\alice, a@r.example\n")["routes"]["alice"]
    assert (route["action"], route["deliver"], route["punt"]) == (
        "deliver",
        ["a@r.example"],
        ["alice@example.org"],
    )


def test_two_alias_loop_is_unroutable_and_reported():
    text = "a: b\nb: a, x@r.example\n"
    assert leaves(text, "a") == {("unknown", "a@example.org"), ("address", "x@r.example")}
    assert "loop" in codes(table(text))


def test_loop_through_a_user_reaches_the_mailbox():
    text = "carol: carol-fwd\ncarol-fwd: carol, c@r.example\n"
    assert leaves(text, "carol") == {("local", "carol"), ("address", "c@r.example")}
    # entered from the other end, the loop loses carol-fwd: it is no user
    assert leaves(text, "carol-fwd") == {("address", "c@r.example"), ("unknown", "carol-fwd@example.org")}
    loops = [f for f in table(text)["findings"] if f["code"] == "loop"]
    assert [(f["local_part"], "carol-fwd@example.org" in f["message"]) for f in loops] == [("carol", True)]


def test_self_loop_in_capitals_is_the_same_address():
    assert leaves("k: K, x@r.example\n", "k") == {("unknown", "K@example.org"), ("address", "x@r.example")}


def test_loop_across_domains_is_not_a_loop_at_first():
    # k@example.org -> k@example.net (another address) -> k@example.net again (ancestor): skipped
    assert leaves("k: k@example.net\n", "k") == {("unknown", "k@example.net")}


def test_more_than_101_ancestors_defers():
    chain = "".join(f"c{i}: c{i + 1}, x{i}@r.example\n" for i in range(110)) + "c110: end@r.example\n"
    got = leaves(chain, "c0")
    assert ("defer", "") in got
    assert ("address", "x100@r.example") in got and ("address", "x101@r.example") not in got
    assert "too-deep" in codes(table(chain))


def test_pipes_deep_down_are_not_counted_as_routed():
    chain = "".join(f"c{i}: c{i + 1}\n" for i in range(101)) + "c101: |/bin/x\n"
    assert leaves(chain, "c0") == {("pipe", "|/bin/x")}


def test_duplicates_are_delivered_once():
    assert leaves("k: x@r.example, j, X@R.EXAMPLE\nj: x@R.example\n", "k") == {
        ("address", "x@r.example"),
        ("address", "X@r.example"),
    }


def test_qualify_preserve_domain_in_second_domain():
    result = secondary_routes(parse_aliases("k: nobody\n"), ["example.net", "example.org"], users={})
    assert result["routes"]["k"]["leaves"] == [{"type": "unknown", "value": "nobody@example.net"}]


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("k: :fail: gone\n", "fail"),
        ("k: :defer: later\n", "defer"),
        ("k: :blackhole:\n", "blackhole"),
        ("k: <broken\n", "defer"),
        ("k: :include:/none\n", "defer"),
        ("k:\n", "fail"),
        ("k: x@r.example\n", "deliver"),
        ("k: /var/x\n", "punt"),
    ],
)
def test_actions(text, action):
    assert table(text)["routes"]["k"]["action"] == action


def test_nested_defer_stays_a_leaf_and_the_rest_is_delivered():
    route = table("k: x@r.example, d\nd: :defer: later\n")["routes"]["k"]
    assert route["action"] == "deliver" and route["deliver"] == ["x@r.example"]
    assert {"type": "defer", "value": "later"} in route["leaves"]


def test_valid_recipients():
    text = (
        "fwd: x@r.example\nfail: :fail: no\ndefer: :defer: later\nhole: :blackhole:\n"
        "single: nobody\nmulti: nobody, x@r.example\npipe: |/bin/x\nempty:\nchain: fwd\n"
    )
    valid = set(table(text)["valid"])
    for lp in ("fwd", "hole", "multi", "pipe", "chain", "alice", "bob"):
        for domain in DOMAINS:
            assert f"{lp}@{domain}" in valid
    for lp in ("fail", "defer", "single", "empty"):
        assert f"{lp}@example.org" not in valid


def test_routes_follow_the_alias_file_then_the_users_without_an_alias():
    text = "zed: x@r.example\nbob: |/bin/x\nmid: zed, alice\nalpha: :fail: gone\n"
    assert list(table(text)["routes"]) == ["zed", "bob", "mid", "alpha", "adb", "alice", "carol"]


@pytest.mark.parametrize("odd", ["", '"new\\nline": y@r.example\n', '"sp ace": y@r.example\n'])
def test_valid_list_is_sorted_by_local_part_then_domain(odd):
    result = table(f"b: x@r.example\n{odd}a.b: x@r.example\na: x@r.example\n")
    keys = sorted(["a", "a.b", "b", *USERS, *(["sp ace"] if "sp" in odd else [])])
    assert result["valid"] == [f"{lp}@{domain}" for lp in keys for domain in DOMAINS]
    # a local part with a control character cannot be a list key: left out, with a finding
    unsafe = [f for f in result["findings"] if f["code"] == "unsafe-key"]
    assert [f["local_part"] for f in unsafe] == (["new\nline"] if "new" in odd else [])
    assert not any("\n" in address for address in result["rcpt"])


FINDINGS = [
    ("duplicate-key", "k: a@r.example\nK: b@r.example\n", {}),
    ("empty-key", ": a@r.example\n", {}),
    ("dropped-continuation", "k: a@r.example,\n\n  b@r.example\n", {}),
    ("backslash-continuation", "k: a@r.example, \\\n  b@r.example\n", {}),
    ("missing-colon", "k :include:/l/a\n", {"/l/a": "x@r.example"}),
    ("syntax-error", "k: a b\n", {}),
    ("include-missing", "k: :include:/l/none\n", {}),
    ("include-loop", "k: :include:/l/a\n", {"/l/a": ":include:/l/a"}),
    ("pfr-in-include", "k: a@r.example, :include:/l/a\n", {"/l/a": "/var/x"}),
    ("mixed-alias", "k: a@r.example, |/bin/x\n", {}),
    ("devnull-pfr", "k: a@r.example, /dev/null\n", {}),
    ("dangling-target", "k: nobody, a@r.example\n", {}),
    ("loop", "k: j\nj: k\n", {}),
    ("fail-keeps-items", "k: a@r.example, :fail: no\n", {}),
    ("defer-drops-items", "k: a@r.example, :defer: later\n", {}),
    ("blackhole-drops-items", "k: a@r.example, :blackhole:\n", {}),
    ("special-swallows-rest", "k: :fail: no, b@r.example\n", {}),
]


@pytest.mark.parametrize(("code", "text", "includes"), FINDINGS, ids=[f[0] for f in FINDINGS])
def test_finding(code, text, includes):
    result = table(text, includes=includes)
    found = [f for f in result["findings"] if f["code"] == code]
    assert found, result["findings"]
    for f in found:
        assert isinstance(f["line"], int) and f["line"] >= 1
        assert f["file"] and f["message"] and f["severity"] in ("error", "warning", "info")


def test_clean_file_has_no_findings():
    assert table(TROLLS)["findings"] == []


@pytest.mark.parametrize(
    "text",
    [None, 42, ["k: a@b.example"], {"k": "v"}, b"k: \xff\xfe\n", "k: a@b.example\0\n"],
    ids=["none", "int", "list", "dict", "not-utf8", "nul"],
)
def test_not_alias_data_is_refused(text):
    with pytest.raises(AliasInputError):
        parse_aliases(text)


def test_utf8_bytes_are_text():
    assert parse_aliases(b"k: a@r.example\n")["entries"]["k"]["items"][0]["value"] == "a@r.example"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (({"nope": 1}, DOMAINS), {}),
        (({"entries": {}}, []), {}),
        (({"entries": {}}, DOMAINS), {"pfr_strategy": "magic"}),
        (({"entries": {}}, DOMAINS), {"includes": ["x"]}),
        (({"entries": {"k": {"line": 1, "items": [{"type": "bogus", "value": "x"}]}}}, DOMAINS), {}),
    ],
)
def test_bad_arguments_are_refused(args, kwargs):
    with pytest.raises(AliasInputError):
        secondary_routes(*args, **kwargs)

# SPDX-License-Identifier: GPL-3.0-or-later
"""secondary_lists: the rcpt and punt lsearch files, read back with the repo's lsearch reader."""

import string

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils._alias_lists import lsearch_key, secondary_lists
from ansible_collections.smartmx.exim.plugins.module_utils._alias_lsearch import read_lsearch
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import AliasInputError
from hypothesis import given, settings
from hypothesis import strategies as st

from .alias_helpers import DOMAINS, table


def _read(text):
    """{key: value} as exim's lsearch reads the file (every line an entry of its own)."""
    entries = read_lsearch(text)
    assert len(entries) == text.count("\n")
    return {entry.key: entry.data for entry in entries}


def test_lists_of_a_small_site():
    text = "k: x@r.example\ngone: :fail: gone\nmoving: :defer: moved,\n  see www\nlist: |/bin/list\n"
    lists = secondary_lists(table(text, strategy="precompute"))
    assert set(lists) == {"rcpt", "punt", "users", "strategy"}
    assert lists["strategy"] == "precompute\n"
    assert _read(lists["users"]) == {"adb": "", "alice": "", "bob": "", "carol": ""}
    rcpt = _read(lists["rcpt"])
    for domain in DOMAINS:
        assert rcpt[f"k@{domain}"] == "accept"
        assert rcpt[f"list@{domain}"] == "accept"
        assert rcpt[f"moving@{domain}"] == "defer moved, see www"
        assert f"gone@{domain}" not in rcpt
    assert lists["rcpt"].splitlines() == sorted(lists["rcpt"].splitlines())
    punt = _read(lists["punt"])
    assert punt == {
        f"{k}@{d}": reason
        for k, reason in (
            ("adb", "user"),
            ("alice", "user"),
            ("bob", "procmail"),
            ("carol", "forward"),
            ("list", "pfr"),
        )
        for d in DOMAINS
    }


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("plain@example.org", "plain@example.org"),
        ("with space@example.org", '"with space@example.org"'),
        ("co:lon@example.org", '"co:lon@example.org"'),
        ('qu"ote@example.org', '"qu\\"ote@example.org"'),
        ("back\\slash@example.org", '"back\\\\slash@example.org"'),
        ("#hash@example.org", '"#hash@example.org"'),
        ("mid#hash@example.org", "mid#hash@example.org"),
        ("new\nline@example.org", None),
        ("cr\r@example.org", None),
        ("nul\0@example.org", None),
        ("tab\t@example.org", None),
        ("del\x7f@example.org", None),
    ],
)
def test_keys_are_quoted_or_refused(key, written):
    assert lsearch_key(key) == written


def test_unsafe_local_parts_are_never_written_and_get_a_finding():
    result = table('"new\\nline": x@r.example\n"sp ace": y@r.example\n')
    assert [f["local_part"] for f in result["findings"] if f["code"] == "unsafe-key"] == ["new\nline"]
    lists = secondary_lists(result)
    assert "new" not in lists["rcpt"]
    assert _read(lists["rcpt"])["sp ace@example.org"] == "accept"


@pytest.mark.parametrize(
    "bad", [None, [], {"rcpt": []}, {"rcpt": {"a@b": "maybe"}, "punt_addresses": []}, {"rcpt": {}}]
)
def test_input_that_is_no_routes_result_is_refused(bad):
    with pytest.raises(AliasInputError):
        secondary_lists(bad)


odd_local_part = st.text(alphabet=string.printable + "äé\u00a0\x00\x7f", min_size=1, max_size=12)


@settings(max_examples=1500, deadline=None, database=None)
@given(
    answers=st.dictionaries(
        st.builds(lambda lp, d: f"{lp}@{d}", odd_local_part, st.sampled_from(DOMAINS)),
        st.sampled_from(["accept", "defer", "reject"]),
        max_size=8,
    ),
    reason=st.text(alphabet=string.printable + "\x00\x85", max_size=20),
)
def test_odd_keys_round_trip_through_lsearch(answers, reason):
    table_ = {
        "rcpt": answers,
        "defer": {a: reason for a, v in answers.items() if v == "defer"},
        "punt_addresses": sorted(answers),
        "punt_reasons": {},
    }
    lists = secondary_lists(table_)
    safe = {a for a in answers if not any(ord(c) < 32 or ord(c) == 127 for c in a)}
    rcpt = _read(lists["rcpt"])
    assert set(rcpt) == {a for a in safe if answers[a] != "reject"}
    for address, value in rcpt.items():
        if answers[address] == "accept":
            assert value == "accept"
        else:
            assert value.split(" ")[0] == "defer"
            assert value == " ".join(("defer " + reason.replace("\x00", " ").replace("\x85", "\x85")).split())
    assert set(_read(lists["punt"])) == safe

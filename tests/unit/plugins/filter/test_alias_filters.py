# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter plugins are thin adapters: same results, AnsibleFilterError for non-alias input."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.filter.parse_aliases import FilterModule as ParseModule
from ansible_collections.smartmx.exim.plugins.filter.secondary_lists import FilterModule as ListsModule
from ansible_collections.smartmx.exim.plugins.filter.secondary_routes import FilterModule as RoutesModule
from ansible_collections.smartmx.exim.plugins.module_utils._alias_lists import secondary_lists
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases, secondary_routes

PARSE = ParseModule().filters()["parse_aliases"]
ROUTES = RoutesModule().filters()["secondary_routes"]
LISTS = ListsModule().filters()["secondary_lists"]
TEXT = "trolls: adb, nemo@sea.example, trolls-archive\ntrolls-archive: /com/archive/trolls\nbad: <x\n"


def test_filters_equal_the_model():
    parsed = PARSE(TEXT, source="/etc/aliases")
    assert parsed == parse_aliases(TEXT, source="/etc/aliases")
    users = {"adb": {"procmail": False, "forward": False}}
    expected = secondary_routes(parsed, ["example.org"], users=users)
    assert ROUTES(parsed, ["example.org"], users=users) == expected


def test_syntax_error_is_data_not_an_exception():
    routes = ROUTES(PARSE(TEXT), ["example.org"])
    assert routes["routes"]["bad"]["action"] == "defer"
    assert any(f["code"] == "syntax-error" and f["line"] == 3 for f in routes["findings"])


@pytest.mark.parametrize(
    ("value", "needle"),
    [(17, "must be a string"), ("k: a@b.example\n\0", "line 2"), (b"\xff", "not UTF-8")],
)
def test_parse_filter_refuses_non_alias_data(value, needle):
    with pytest.raises(AnsibleFilterError) as info:
        PARSE(value)
    assert "smartmx.exim.parse_aliases" in str(info.value) and needle in str(info.value)


def test_routes_filter_refuses_bad_arguments():
    with pytest.raises(AnsibleFilterError, match=r"smartmx\.exim\.secondary_routes.*pfr_strategy"):
        ROUTES(PARSE(TEXT), ["example.org"], pfr_strategy="sometimes")
    with pytest.raises(AnsibleFilterError, match=r"smartmx\.exim\.secondary_routes.*\(line 7\)"):
        ROUTES({"entries": {"k": {"line": 7, "items": [{"type": "pipe"}]}}}, ["example.org"])


def test_lists_filter_equals_the_model_and_refuses_what_is_no_routing_table():
    routes = ROUTES(PARSE(TEXT), ["example.org"], users={"adb": {}})
    assert LISTS(routes) == secondary_lists(routes)
    assert "bad@example.org: defer error in redirect data" in LISTS(routes)["rcpt"]
    with pytest.raises(AnsibleFilterError, match=r"smartmx\.exim\.secondary_lists.*'rcpt'"):
        LISTS({"routes": {}})

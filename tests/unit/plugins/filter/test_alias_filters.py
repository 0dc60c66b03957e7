# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter plugins are thin adapters: same results, AnsibleFilterError for non-alias input."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.filter.drift_report import FilterModule as DriftModule
from ansible_collections.smartmx.exim.plugins.filter.parse_aliases import FilterModule as ParseModule
from ansible_collections.smartmx.exim.plugins.filter.secondary_data import FilterModule as DataModule
from ansible_collections.smartmx.exim.plugins.filter.secondary_lists import FilterModule as ListsModule
from ansible_collections.smartmx.exim.plugins.filter.secondary_routes import FilterModule as RoutesModule
from ansible_collections.smartmx.exim.plugins.module_utils._alias_lists import secondary_lists
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases, secondary_routes

PARSE = ParseModule().filters()["parse_aliases"]
ROUTES = RoutesModule().filters()["secondary_routes"]
LISTS = ListsModule().filters()["secondary_lists"]
DATA = DataModule().filters()["secondary_data"]
PLAN = DriftModule().filters()["drift_routing_plan"]
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


# secondary_data: one call for parse_aliases | secondary_routes | secondary_lists (| drift_routing_plan)

CORPUS = Path(__file__).resolve().parents[3] / "corpus"
# The corpus reader of the differential tests (pure Python; nothing of it starts a container).
sys.path.insert(0, str(CORPUS.parent / "differential"))
from exim_truth import load_corpus  # noqa: E402

SITE = load_corpus(CORPUS)


@pytest.mark.parametrize("name", sorted(SITE["aliases"]))
@pytest.mark.parametrize("strategy", ["patch", "precompute"])
def test_secondary_data_equals_the_filters_in_a_row(name, strategy):
    text = SITE["aliases"][name]
    kwargs = {
        "includes": SITE["includes"],
        "users": SITE["users"],
        "pfr_strategy": strategy,
        "source": "/com/mailer/aliases",
    }
    domains = ["gnu.test", "fsf.test"]
    table = ROUTES(PARSE(text, source="/com/mailer/aliases"), domains, **kwargs)
    got = DATA(text, domains, plan={"size": 50, "seed": 3}, **kwargs)
    assert got["files"] == LISTS(table)
    assert got["findings"] == table["findings"]
    assert got["pfr_strategy"] == strategy
    assert got["plan"] == PLAN(table, "gnu.test", size=50, seed=3)
    assert "routes" not in got
    assert "plan" not in DATA(text, domains, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"plan": {"size": 10, "sede": 1}}, "plan must be a dict of size, seed, priority_cap"),
        ({"plan": [10]}, "plan must be a dict"),
        ({"pfr_strategy": "magic"}, "smartmx.exim.secondary_data"),
    ],
)
def test_secondary_data_refuses_bad_arguments(kwargs, needle):
    with pytest.raises(AnsibleFilterError) as info:
        DATA(TEXT, ["example.org"], **kwargs)
    assert needle in str(info.value)


def test_secondary_data_refuses_what_is_no_alias_data():
    with pytest.raises(AnsibleFilterError) as info:
        DATA("k: a@b.example\n\0", ["example.org"])
    assert "smartmx.exim.secondary_data" in str(info.value) and "line 2" in str(info.value)

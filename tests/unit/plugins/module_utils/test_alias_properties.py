# SPDX-License-Identifier: GPL-3.0-or-later
"""Property tests of the alias model: 12,500 generated inputs in all.

* any text never crashes or hangs: it parses, or is refused as not alias data;
* every error and every finding carries a line number inside its file;
* pfr_strategy patch and precompute give the same outcome for every address;
* leaves are sorted and unique, and valid recipients are routes x domains;
* the fast paths give exactly what the general path gives: the comparison
  runs with every shortcut of the parser and the router off (``fast=False``;
  test_alias_shortcuts.py proves that it reaches each of them).
"""

import string
from types import MappingProxyType

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import (
    AliasInputError,
    _parse_aliases,
    _secondary_routes,
    parse_aliases,
    secondary_routes,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DOMAINS = ["example.org", "example.net"]
KEYS = ["a", "b", "c", "d", "e", "alice", "bob", "list", "Trolls", "trolls-archive", "x.y"]
USERS = {"alice": {"procmail": False, "forward": False}, "bob": {"procmail": True, "forward": True}}
INCLUDE_PATHS = ["/inc/0", "/inc/1", "/inc/2", "/inc/3"]


def _settings(n):
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


junk = st.text(alphabet=string.printable + "äé\u00a0", max_size=8)
item = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(KEYS).map(lambda k: "\\" + k),
    st.sampled_from(KEYS).map(lambda k: k.upper() + "@Example.NET"),
    st.builds(
        lambda a, b: f"{a}@{b}.example", st.sampled_from(["x", "Y.z", "w+t"]), st.sampled_from(["r", "s"])
    ),
    st.sampled_from(
        ['"|/bin/cmd a,b"', "|/bin/cmd", "/var/arch", "/var/dir/", "/dev/null", '"/var/with space"']
    ),
    st.sampled_from([*INCLUDE_PATHS, "/inc/missing", "rel/path"]).map(lambda p: ":include:" + p),
    st.sampled_from([":fail:", ":fail: 550 gone", ":defer: later", ":blackhole:", ":unknown:", ":"]),
    st.sampled_from(
        ['"a b"@r.example', "Name <n@r.example>", "n@r.example (c)", "<broken", "a b", '"x', "(c"]
    ),
    junk,
)


@st.composite
def alias_line(draw):
    key = draw(st.sampled_from([*KEYS, '"q k"', ":"]))
    sep = draw(st.sampled_from([": ", ":", " ", "\t", " : ", ":: "]))
    items = draw(st.lists(item, max_size=4))
    joiner = draw(st.sampled_from([", ", ",\n  ", "\n\t", " "]))
    extra = draw(st.sampled_from(["", "", "\n", "\n# c\n", " \\"]))
    return key + sep + joiner.join(items) + extra


alias_text = st.lists(alias_line(), max_size=6).map("\n".join)
include_texts = st.dictionaries(
    st.sampled_from(INCLUDE_PATHS), st.lists(item, max_size=4).map("\n".join), max_size=4
)


def _lines(text):
    return text.count("\n") + 1


def _check_table(text, includes, strategy):
    parsed = parse_aliases(text)
    for error in parsed["errors"]:
        assert isinstance(error["line"], int) and 1 <= error["line"] <= _lines(text), error
    result = secondary_routes(parsed, DOMAINS, includes=includes, users=USERS, pfr_strategy=strategy)
    for finding in result["findings"]:
        limit = _lines(text) if finding["file"] == "aliases" else _lines(includes.get(finding["file"], ""))
        assert isinstance(finding["line"], int) and 1 <= finding["line"] <= limit, finding
        assert finding["code"] and finding["message"]
    for key, route in result["routes"].items():
        pairs = [(leaf["type"], leaf["value"]) for leaf in route["leaves"]]
        assert pairs == sorted(set(pairs)), key
        assert route["action"] in ("deliver", "punt", "fail", "defer", "blackhole")
        entry = parsed["entries"].get(key)
        if entry and "error" in entry and not any(i["type"] == "include" for i in entry["items"]):
            assert route["action"] == "defer"  # an error defers the alias (unless an include stops first)
    assert set(result["valid"]) <= {f"{k}@{d}" for k in result["routes"] for d in DOMAINS}
    return result


@_settings(4000)
@given(text=alias_text, includes=include_texts, strategy=st.sampled_from(["patch", "precompute"]))
def test_generated_alias_files_never_crash_and_errors_have_lines(text, includes, strategy):
    _check_table(text, includes, strategy)


@_settings(3000)
@given(text=alias_text, includes=include_texts)
def test_patch_and_precompute_route_every_address_alike(text, includes):
    patch = _check_table(text, includes, "patch")
    pre = _check_table(text, includes, "precompute")
    assert set(patch["punt"]) <= set(pre["punt"])
    assert patch["routes"].keys() == pre["routes"].keys()
    for key, a in patch["routes"].items():
        b = pre["routes"][key]
        assert (a["action"], a["deliver"], a["punt"], a["leaves"]) == (
            b["action"],
            b["deliver"],
            b["punt"],
            b["leaves"],
        )
    assert patch["valid"] == pre["valid"]


@_settings(3500)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=120)))
def test_any_input_is_parsed_or_refused_cleanly(text):
    try:
        parsed = parse_aliases(text)
    except AliasInputError as exc:
        assert isinstance(text, bytes) or "\0" in text
        assert exc.line is not None or not isinstance(text, str)
        return
    result = secondary_routes(parsed, DOMAINS, includes={}, users=USERS)
    assert isinstance(result["routes"], dict)


simple_item = st.one_of(
    st.sampled_from(KEYS),
    st.builds(
        lambda k, d: f"{k}@{d}",
        st.sampled_from(KEYS),
        st.sampled_from([*DOMAINS, "Example.ORG", "x.example"]),
    ),
    st.sampled_from(['"|/bin/cmd a"', '"/var/arch"', '"/var/dir/"', "/var/arch", '"/dev/null"', '"|x@y"']),
    item,
)
# one item, or a one-line list of them
simple_value = st.one_of(
    simple_item,
    st.builds(
        lambda values, seps: values[0] + "".join(s + v for s, v in zip(seps, values[1:], strict=False)),
        st.lists(simple_item, min_size=2, max_size=4),
        st.lists(st.sampled_from([", ", ",", " , ", "\t,", ",,"]), min_size=3, max_size=3),
    ),
)
simple_line = st.builds(
    lambda key, sep, value, tail: key + sep + value + tail,
    st.sampled_from([*KEYS, "A", "Alice", '"q k"', ":", "#c", " x"]),
    st.sampled_from([": ", ":", " ", "\t", " : ", ":: ", ""]),
    simple_value,
    st.sampled_from(["", "", "", " ", "\r", "\t", ",", " \\"]),
)
simple_text = st.lists(st.one_of(simple_line, simple_line, alias_line()), max_size=10).map("\n".join)


@_settings(2000)
@given(
    text=st.one_of(simple_text, alias_text),
    includes=include_texts,
    strategy=st.sampled_from(["patch", "precompute"]),
)
def test_fast_paths_equal_the_general_path_with_every_shortcut_off(text, includes, strategy):
    fast = parse_aliases(text)
    general = _parse_aliases(text, "aliases", fast=False)
    assert fast == general
    # entries that are not plain dicts skip the routing fast lanes
    slow_input = dict(general, entries={k: MappingProxyType(e) for k, e in general["entries"].items()})
    routes = secondary_routes(fast, DOMAINS, includes=includes, users=USERS, pfr_strategy=strategy)
    slow = _secondary_routes(slow_input, DOMAINS, includes, USERS, strategy, "aliases", None, fast=False)
    assert routes == slow
    plain = _secondary_routes(general, DOMAINS, includes, USERS, strategy, "aliases", None, fast=False)
    assert routes == plain


ONE_STEP = (
    "team: Alice, List, fwd, x@R.example, nobody, list@example.net\n"
    "list: |/bin/list\n"
    "fwd: y@r.example\n"
    "deep: team, z@r.example\n"
    "self: self, z@r.example\n"
)


def _fast_equals_general(text, strategy, includes=None, directory=None):
    """The table of ``text``, once it is proven equal to the general path's."""
    includes = includes or {}
    parsed = parse_aliases(text)
    slow_input = dict(parsed, entries={k: MappingProxyType(e) for k, e in parsed["entries"].items()})
    table = secondary_routes(
        parsed, DOMAINS, includes=includes, users=USERS, pfr_strategy=strategy, include_directory=directory
    )
    slow = _secondary_routes(slow_input, DOMAINS, includes, USERS, strategy, "aliases", directory, fast=False)
    assert table == slow
    return table


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
def test_one_step_routes_equal_the_general_path(strategy):
    routes = _fast_equals_general(ONE_STEP, strategy)
    team = routes["routes"]["team"]
    assert (team["action"], team["deliver"]) == ("deliver", ["x@r.example", "y@r.example"])
    assert team["punt"] == ["Alice@example.org", "List@example.org", "list@example.net"]
    assert {"type": "pipe", "value": "|/bin/list"} in team["leaves"]
    assert {"type": "unknown", "value": "nobody@example.org"} in team["leaves"]


USERS_LANE = (
    "name: Alice\n"
    "copy: \\bob, bob@r.example\n"
    "several: alice, Bob@Example.NET, x@r.example, alice\n"
    "via: fwd, alice\n"  # a child that is an alias: the general path
    "lost: alice, nobody\n"  # an unknown child: the general path, and a finding
    'quoted: \\\\alice, "bob"\n'  # a backslash in the local part: the general path
    "fwd: y@r.example\n"
    "trolls: alice, x@r.example, Trolls-archive\n"
    "trolls-archive: /var/arch\n"
    "nulls: alice, null\n"  # /dev/null is no alias of the pfr lane
    "null: /dev/null\n"
)


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
def test_lists_of_users_equal_the_general_path(strategy):
    table = _fast_equals_general(USERS_LANE, strategy)
    routes = table["routes"]
    assert routes["name"]["leaves"] == [{"type": "local", "value": "alice"}]
    assert routes["name"]["punt"] == ["Alice@example.org"]
    assert routes["copy"]["punt"] == ["bob@example.org"]
    assert routes["copy"]["deliver"] == ["bob@r.example"]
    assert routes["several"]["punt"] == ["Bob@example.net", "alice@example.org"]
    assert [f["local_part"] for f in table["findings"] if f["code"] == "dangling-target"] == ["lost"]
    assert all(table["rcpt"][k + "@example.net"] == "accept" for k in ("name", "copy", "several", "trolls"))
    assert routes["trolls"]["punt"] == ["Trolls-archive@example.org", "alice@example.org"]
    assert {"type": "file", "value": "/var/arch"} in routes["trolls"]["leaves"]


INCLUDE_LANE = (
    "staff: :include:/l/staff\n"
    "one: :include:/l/one\n"
    "via: :include:/l/via\n"  # a member that is an alias: the general path
    "empty: :include:/l/empty\n"  # no member: declines
    "stop: :include:/l/stop\n"
    "gone: :include:/l/gone\n"  # missing
    "fwd: y@r.example\n"
)
INCLUDE_FILES = {
    "/l/staff": "alice\nBob@example.net\nx@r.example\n",
    "/l/one": "alice\n",
    "/l/via": "alice\nfwd\n",
    "/l/empty": "\n",
    "/l/stop": "alice\n:fail: gone\n",
}


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
@pytest.mark.parametrize("directory", [None, "/l"])
def test_include_lists_of_users_equal_the_general_path(strategy, directory):
    table = _fast_equals_general(INCLUDE_LANE, strategy, INCLUDE_FILES, directory)
    routes = table["routes"]
    assert routes["staff"]["punt"] == ["Bob@example.net", "alice@example.org"]
    assert routes["staff"]["deliver"] == ["x@r.example"]
    assert routes["one"]["leaves"] == [{"type": "local", "value": "alice"}]
    assert routes["empty"]["action"] == "fail"
    assert routes["gone"]["action"] == "defer"
    assert table["rcpt"]["one@example.net"] == "accept"


CHAINS = (
    "a: b\nb: c\nc: Alice, x@r.example\n"
    "loop: loop2\nloop2: loop\n"
    "self: self\n"
    "long: l1\nl1: l2\nl2: l3\nl3: l4\nl4: l5\nl5: alice\n"  # longer than _chain() follows
    "f: fwd\nfwd: y@r.example\n"
    "other: Alice@example.net\n"  # in the other domain: the general path
    "via: other\n"
    "pipe: p\np: |/bin/p\n"
    "inc: :include:/l/one\nto-inc: inc\n"
)


@pytest.mark.parametrize("strategy", ["patch", "precompute"])
def test_chains_to_the_lanes_equal_the_general_path(strategy):
    table = _fast_equals_general(CHAINS, strategy, {"/l/one": "alice\n"})
    routes = table["routes"]
    assert routes["a"]["punt"] == ["Alice@example.org"]
    assert routes["a"]["deliver"] == ["x@r.example"]
    assert routes["long"]["leaves"] == [{"type": "local", "value": "alice"}]
    assert routes["via"]["punt"] == ["Alice@example.net"]
    assert routes["to-inc"]["punt"] == ["alice@example.org"]
    assert all(table["rcpt"][k + "@example.net"] == "accept" for k in ("a", "long", "f", "via", "to-inc"))

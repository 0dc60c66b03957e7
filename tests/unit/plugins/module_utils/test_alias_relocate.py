# SPDX-License-Identifier: GPL-3.0-or-later
"""Relocation of :include: paths into a generation: exactly the items exim reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils._alias_parse import parse_list
from ansible_collections.smartmx.exim.plugins.module_utils._alias_relocate import (
    RelocateError,
    alias_sites,
    list_sites,
    relocate,
    unrelocate,
)
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases

CORPUS = Path(__file__).resolve().parents[3] / "corpus"
PREFIX = "/var/lib/smartmx/aliases/generations/20261201T000000Z-0123456789ab/include"


def _offsets(sites):
    return [s[0] for s in sites]


def _moved(kind, value):
    return PREFIX + value if kind == "include" else value


def _items(parsed):
    return {k: [(i["type"], i["value"]) for i in e["items"]] for k, e in parsed["entries"].items()}


def test_odd_items():
    text = (
        "a: b\n"
        "staff: :include:/com/mailer/include/staff, x@y.org\n"
        "# staff2: :include:/in/a/comment\n"
        'q: ":include: /com/mailer/include/q q"\n'
        "multi: a,\n"
        "   :include:\n"
        '   /com/i/m , ":include:/com/i/n"\n'
        "gone: :fail: see :include:/com/x\n"
        "staff: :include:/com/repeated/key\n"
        "err: <<, :include:/com/after/error\n"
    )
    sites = alias_sites(text, parse_aliases(text))
    assert [(path, line) for _o, path, line in sites] == [
        ("/com/mailer/include/staff", 2),
        ("/com/mailer/include/q q", 4),
        ("/com/i/m", 7),
        ("/com/i/n", 7),
    ]
    moved = relocate(text, _offsets(sites), "/G/include")
    assert "staff: :include:/G/include/com/mailer/include/staff, x@y.org\n" in moved
    assert 'q: ":include: /G/include/com/mailer/include/q q"\n' in moved
    assert '   /G/include/com/i/m , ":include:/G/include/com/i/n"\n' in moved
    # not read by exim, so not touched
    for untouched in ("/in/a/comment", ":fail: see :include:/com/x", "/com/repeated/key", "/com/after/error"):
        assert untouched in moved
    assert unrelocate(moved, _offsets(sites), "/G/include") == text


def test_include_file_sites():
    text = 'a@b.org\n:include:/x/y\n# :include:/commented\n":include: /q"\n:fail: :include:/no\n'
    sites = list_sites(text)
    assert [(p, line) for _o, p, line in sites] == [("/x/y", 2), ("/q", 4)]
    moved = relocate(text, _offsets(sites), PREFIX)
    values = [i["value"] for i in parse_list(moved).items if i["type"] == "include"]
    assert values == [PREFIX + "/x/y", PREFIX + "/q"]


def test_no_include_no_work():
    assert list_sites("a@b.org\n") == []
    text = "a: b@c.org\n"
    assert alias_sites(text, parse_aliases(text)) == []
    assert relocate(text, [], PREFIX) is text


def test_unrelocate_refuses_a_text_without_the_prefix():
    with pytest.raises(RelocateError):
        unrelocate("a: :include:/x\n", [12], PREFIX)


def _corpus_aliases():
    return sorted((CORPUS / "aliases").iterdir())


@pytest.mark.parametrize("path", _corpus_aliases(), ids=lambda p: p.name)
def test_corpus_alias_files_relocate_exactly(path):
    """Parsing the relocated file gives the same entries, include paths prefixed, nothing else."""
    text = path.read_text(encoding="utf-8")
    parsed = parse_aliases(text)
    sites = alias_sites(text, parsed)
    moved = relocate(text, _offsets(sites), PREFIX)
    again = parse_aliases(moved)
    want = {key: [(t, _moved(t, v)) for t, v in items] for key, items in _items(parsed).items()}
    assert _items(again) == want
    assert [e["line"] for e in again["errors"]] == [e["line"] for e in parsed["errors"]]
    assert unrelocate(moved, _offsets(sites), PREFIX) == text
    included = sum(1 for items in want.values() for t, _v in items if t == "include")
    assert len(sites) == included


def test_corpus_has_includes():
    total = 0
    for path in _corpus_aliases():
        text = path.read_text(encoding="utf-8")
        total += len(alias_sites(text, parse_aliases(text)))
    assert total >= 20


@pytest.mark.parametrize(
    "path", sorted(p for p in (CORPUS / "include").rglob("*") if p.is_file()), ids=lambda p: p.name
)
def test_corpus_include_files_relocate_exactly(path):
    text = path.read_text(encoding="utf-8")
    sites = list_sites(text)
    moved = relocate(text, _offsets(sites), PREFIX)
    before = [(i["type"], i["value"]) for i in parse_list(text).items]
    after = [(i["type"], i["value"]) for i in parse_list(moved).items]
    assert after == [(t, _moved(t, v)) for t, v in before]
    assert unrelocate(moved, _offsets(sites), PREFIX) == text

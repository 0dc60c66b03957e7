# SPDX-License-Identifier: GPL-3.0-or-later
"""One test per syntax rule of exim 4.96 alias files (lsearch + parse_forward_list).

Every expectation here was checked with `exim -bt` of Debian's exim4 4.96.
"""

import pytest
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases

from .alias_helpers import leaves

A = ("address",)

SYNTAX = [
    # lsearch: keys
    ("colon-optional", "fwd x@r.example\n", "fwd", {("address", "x@r.example")}),
    ("tab-separator", "fwd\tx@r.example\n", "fwd", {("address", "x@r.example")}),
    ("space-before-colon", "fwd : x@r.example\n", "fwd", {("address", "x@r.example")}),
    ("caseless-key", "FwD: x@r.example\n", "fwd", {("address", "x@r.example")}),
    ("first-match-wins", "k: first@r.example\nK: second@r.example\n", "k", {("address", "first@r.example")}),
    ("quoted-key-space", '"two words": x@r.example\n', "two words", {("address", "x@r.example")}),
    ("quoted-key-escape", '"say \\"hi\\"": x@r.example\n', 'say "hi"', {("address", "x@r.example")}),
    ("quoted-key-hex", '"\\x41bc": x@r.example\n', "abc", {("address", "x@r.example")}),
    # lsearch: continuation and comments
    (
        "continuation",
        "k: a@r.example,\n  b@r.example\n",
        "k",
        {("address", "a@r.example"), ("address", "b@r.example")},
    ),
    # the continuation joins with one blank, so two addresses without a comma are one bad item
    (
        "continuation-no-comma",
        "k: a@r.example\n\tb@r.example\n",
        "k",
        {
            (
                "defer",
                "error in redirect data: malformed address: b@r.example may not follow a@r.example  "
                'in "a@r.example b@r.example"',
            )
        },
    ),
    ("blank-line-ends-entry", "k: a@r.example,\n\n  b@r.example\n", "k", {("address", "a@r.example")}),
    (
        "comment-line-ends-entry",
        "k: a@r.example,\n# note\n  b@r.example\n",
        "k",
        {("address", "a@r.example")},
    ),
    (
        "blank-only-line-ends-entry",
        "k: a@r.example,\n   \n  b@r.example\n",
        "k",
        {("address", "a@r.example")},
    ),
    ("indented-hash-is-data", "k: a@r.example,\n  # b@r.example\n", "k", {("address", "a@r.example")}),
    (
        "trailing-backslash-is-not-continuation",
        "k: a@r.example, \\\nb: x@r.example\n",
        "b",
        {("address", "x@r.example")},
    ),
    ("trailing-white-space", "k: a@r.example   \t\n", "k", {("address", "a@r.example")}),
    ("empty-value-declines-unknown", "k:\n", "k", {("unknown", "k@example.org")}),
    ("empty-value-declines-to-user", "alice:\n", "alice", {("local", "alice")}),
    (
        "missing-colon-eats-include-colon",
        "k :include:/l\n",
        "k",
        {
            (
                "defer",
                "error in redirect data: missing or malformed local part "
                '(expected word or "<") in "include:/l"',
            )
        },
    ),
    # items
    ("domain-folded-local-kept", "k: Some.One@R.Example\n", "k", {("address", "Some.One@r.example")}),
    ("bare-local-user", "k: Alice\n", "k", {("local", "alice")}),
    ("bare-local-unknown", "k: nobody\n", "k", {("unknown", "nobody@example.org")}),
    ("bare-local-alias", "k: j\nj: x@r.example\n", "k", {("address", "x@r.example")}),
    ("backslash-local-still-aliased", "k: \\j\nj: x@r.example\n", "k", {("address", "x@r.example")}),
    (
        "backslash-self-keeps-copy",
        "alice: \\alice, a@r.example\n",
        "alice",
        {("local", "alice"), ("address", "a@r.example")},
    ),
    ("backslash-qualified-kept", "k: \\a@r.example\n", "k", {("address", "\\a@r.example")}),
    ("name-angle", "k: Some One <one@r.example>\n", "k", {("address", "one@r.example")}),
    ("comment-form", "k: one@r.example (Some One)\n", "k", {("address", "one@r.example")}),
    ("quoted-local-with-comma", 'k: "a,b"@r.example\n', "k", {("address", '"a,b"@r.example')}),
    ("second-local-domain", "k: alice@Example.NET\n", "k", {("local", "alice")}),
    ("pipe-quoted-comma", 'k: "|/bin/cmd a,b"\n', "k", {("pipe", "|/bin/cmd a,b")}),
    ("pipe-unquoted", "k: |/bin/cmd\n", "k", {("pipe", "|/bin/cmd")}),
    ("pipe-quoted-escape", 'k: "|/bin/echo \\"x\\""\n', "k", {("pipe", '|/bin/echo "x"')}),
    ("file", "k: /var/mail/archive\n", "k", {("file", "/var/mail/archive")}),
    ("file-with-space", 'k: "/var/mail/my archive"\n', "k", {("file", "/var/mail/my archive")}),
    ("directory", "k: /var/mail/maildir/\n", "k", {("directory", "/var/mail/maildir/")}),
    ("dev-null-is-a-file", "k: /dev/null\n", "k", {("file", "/dev/null")}),
    ("slash-with-domain-is-address", "k: /s=x/@gate.example\n", "k", {("address", "/s=x/@gate.example")}),
    ("fail-message", "k: :fail: Gone away, no forwarding\n", "k", {("fail", "Gone away, no forwarding")}),
    ("fail-no-message", "k: :fail:\n", "k", {("fail", "")}),
    (
        "fail-keeps-earlier-items",
        "k: a@r.example, :fail: bye\n",
        "k",
        {("address", "a@r.example"), ("fail", "bye")},
    ),
    ("fail-smtp-code", "k: :fail: 550 5.1.1 gone\n", "k", {("fail", "550 5.1.1 gone")}),
    ("defer-drops-earlier-items", "k: a@r.example, :defer: later\n", "k", {("defer", "later")}),
    ("blackhole-alone", "k: :blackhole:\n", "k", {("blackhole", "")}),
    ("blackhole-discards-list", "k: a@r.example, :blackhole:\n", "k", {("blackhole", "")}),
    ("unknown-ignored", "k: :unknown:, a@r.example\n", "k", {("address", "a@r.example")}),
    ("unknown-prefix-ignored", "k: :, :unk, a@r.example\n", "k", {("address", "a@r.example")}),
    ("only-unknown-declines", "k: :unknown:\n", "k", {("unknown", "k@example.org")}),
    ("hash-item-ends-list", "k: a@r.example, #b@r.example\n", "k", {("address", "a@r.example")}),
    ("empty-comment-item-skipped", "k: (nothing), a@r.example\n", "k", {("address", "a@r.example")}),
    (
        "syntax-error-defers",
        "k: foo bar\n",
        "k",
        {
            (
                "defer",
                'error in redirect data: missing or malformed local part (expected word or "<") in "foo bar"',
            )
        },
    ),
    (
        "unbalanced-angle",
        "k: <a@r.example\n",
        "k",
        {("defer", "error in redirect data: '>' missing at end of address in \"<a@r.example\"")},
    ),
    (
        "relative-include",
        "k: :include:lists/x\n",
        "k",
        {("defer", 'error in redirect data: included file "lists/x" is not an absolute path')},
    ),
    (
        "include-missing-name",
        "k: :include:\n",
        "k",
        {("defer", "error in redirect data: file name missing after :include:")},
    ),
    # rda.c rda_is_filter(): "# Exim filter" / "#sieve  filter" data is a filter, not allowed here
    (
        "exim-filter-data-defers",
        "k: # Exim filter\n",
        "k",
        {("defer", "error in filter data: filtering not enabled")},
    ),
    (
        "sieve-tag-caseless",
        "k: #SIEVE\tfilter x\n",
        "k",
        {("defer", "error in filter data: filtering not enabled")},
    ),
    ("hash-data-is-a-comment", "k: # just a note\n", "k", {("unknown", "k@example.org")}),
]


@pytest.mark.parametrize(
    ("text", "local_part", "expected"), [c[1:] for c in SYNTAX], ids=[c[0] for c in SYNTAX]
)
def test_syntax_rule(text, local_part, expected):
    assert leaves(text, local_part) == expected


INCLUDES = [
    (
        "include-newline-list",
        {"/l/a": "a@r.example\nb@r.example\n"},
        "k: :include:/l/a\n",
        {("address", "a@r.example"), ("address", "b@r.example")},
    ),
    (
        "include-comments",
        {"/l/a": "# staff\na@r.example, # b@r.example\n c@r.example\n"},
        "k: :include:/l/a\n",
        {("address", "a@r.example"), ("address", "c@r.example")},
    ),
    (
        "include-nested",
        {"/l/a": ":include:/l/b, a@r.example", "/l/b": "b@r.example"},
        "k: :include:/l/a\n",
        {("address", "a@r.example"), ("address", "b@r.example")},
    ),
    (
        "include-unqualified-gets-domain",
        {"/l/a": "nobody"},
        "k: :include:/l/a\n",
        {("unknown", "nobody@example.org")},
    ),
    (
        "include-missing-defers",
        {},
        "k: a@r.example, :include:/l/none\n",
        {
            (
                "defer",
                "error in redirect data: failed to open included file /l/none: No such file or directory",
            )
        },
    ),
    (
        "include-fail-rest-of-file",
        {"/l/a": "x@r.example, :fail: gone\nmore\n"},
        "k: :include:/l/a\n",
        {("fail", "gone\nmore")},
    ),
    (
        "include-fail-keeps-outer-items",
        {"/l/a": "x@r.example, :fail: gone"},
        "k: a@r.example, :include:/l/a\n",
        {("address", "a@r.example"), ("fail", "gone")},
    ),
    ("include-blackhole", {"/l/a": ":blackhole:"}, "k: a@r.example, :include:/l/a\n", {("blackhole", "")}),
    (
        "include-empty-declines",
        {"/l/a": "# nobody yet\n"},
        "k: :include:/l/a\n",
        {("unknown", "k@example.org")},
    ),
    (
        "include-syntax-error",
        {"/l/a": "a b c"},
        "k: :include:/l/a\n",
        {
            (
                "defer",
                'error in redirect data: missing or malformed local part (expected word or "<") in "a b c"',
            )
        },
    ),
]


@pytest.mark.parametrize(
    ("includes", "text", "expected"), [c[1:] for c in INCLUDES], ids=[c[0] for c in INCLUDES]
)
def test_include_rule(includes, text, expected):
    assert leaves(text, "k", includes=includes) == expected


def test_include_paths_resolve_like_the_file_system():
    includes = {"/l/a": "a@r.example"}
    assert leaves("k: :include:/l/./a\n", "k", includes=includes) == {("address", "a@r.example")}
    assert leaves("k: :include:/l/x/../a\n", "k", includes=includes) == {("address", "a@r.example")}
    # with include_directory exim walks the path with openat() and trips over '//'
    double = leaves("k: :include:/l//a\n", "k", includes=includes, include_directory="/l")
    assert double == {
        (
            "defer",
            "error in redirect data: failed to open /l//a (component of included file); "
            "could be symbolic link",
        )
    }


def test_include_file_used_as_directory():
    got = leaves("k: :include:/l/a/\n", "k", includes={"/l/a": "a@r.example"})
    assert got == {("defer", "error in redirect data: failed to open included file /l/a/: Not a directory")}


def test_include_directory_texts():
    missing = leaves("k: :include:/com/inc/none\n", "k", include_directory="/com/inc")
    assert missing == {
        (
            "defer",
            "error in redirect data: failed to open /com/inc/none (component of included "
            "file); could be symbolic link",
        )
    }
    outside = leaves(
        "k: :include:/etc/x\n", "k", includes={"/etc/x": "a@r.example"}, include_directory="/com/inc/"
    )
    assert outside == {
        ("defer", "error in redirect data: included file /etc/x is not in directory /com/inc/")
    }


def test_parse_shape_and_lines():
    parsed = parse_aliases("# head\nk: a@r.example,\n  \\bob, |/bin/x\nbad: <x\n", source="/etc/aliases")
    entry = parsed["entries"]["k"]
    assert entry["line"] == 2
    assert entry["items"] == [
        {"type": "address", "value": "a@r.example", "line": 2},
        {"type": "local", "value": "bob", "line": 3, "backslash": True},
        {"type": "pipe", "value": "|/bin/x", "line": 3},
    ]
    assert parsed["errors"] == [
        {
            "line": 4,
            "message": '"@" or "." expected after "x" in "<x"',
            "local_part": "bad",
            "file": "/etc/aliases",
        }
    ]


def test_error_line_is_the_continuation_line():
    parsed = parse_aliases("k: a@r.example,\n  b@r.example,\n  <broken\n")
    assert parsed["errors"][0]["line"] == 3


def test_long_lines_are_whole():
    many = ", ".join(f"m{i}@r.example" for i in range(600))
    assert len(many) > 4096
    assert len(leaves(f"k: {many}\n", "k")) == 600

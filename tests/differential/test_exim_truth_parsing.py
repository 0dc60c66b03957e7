# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness reads exim -bt output right: outputs captured from exim 4.96 -bt runs."""

from __future__ import annotations

import exim_truth
import pytest


def leaves(*pairs):
    return [{"type": t, "value": v} for t, v in sorted(pairs)]


CASES = {
    "routed local, off-site with host, duplicate marker, pfr first": (
        """trolls-archive@gnu.test -> /com/archive/trolls
  transport = address_file
zarkon@gnu.test
    <-- trolls@gnu.test
  router = local_user, transport = local_delivery
adb@gnu.test   [duplicate, would not be delivered]
    <-- trolls@gnu.test
  router = local_user, transport = local_delivery
Pk@Elsewhere.TEST
    <-- trolls@gnu.test
  router = offsite, transport = remote_smtp
  host 192.0.2.25 [192.0.2.25]""",
        leaves(
            ("file", "/com/archive/trolls"),
            ("local", "zarkon"),
            ("local", "adb"),
            ("address", "Pk@elsewhere.test"),
        ),
    ),
    "pipe and directory": (
        """list@gnu.test -> |/usr/lib/mailman/mail/mailman post list
  transport = address_pipe
dir@gnu.test -> /com/archive/dir/
  transport = address_directory""",
        leaves(("pipe", "|/usr/lib/mailman/mail/mailman post list"), ("directory", "/com/archive/dir/")),
    ),
    "fail with message and code": (
        "code@gnu.test is undeliverable: 550 5.1.1 gone away",
        leaves(("fail", "550 5.1.1 gone away")),
    ),
    "fail with empty message": ("failer2@gnu.test is undeliverable: ", leaves(("fail", ""))),
    "fail and the items before it": (
        """failmix@gnu.test is undeliverable: gone away, nemo
adb@gnu.test
    <-- failmix@gnu.test
  router = local_user, transport = local_delivery""",
        leaves(("fail", "gone away, nemo"), ("local", "adb")),
    ),
    "unroutable child keeps its case, domain folded": (
        """SELF-CAPS@GNU.TEST is undeliverable: Unrouteable address
    <-- self-caps@gnu.test""",
        leaves(("unknown", "SELF-CAPS@gnu.test")),
    ),
    "defer with message": (
        "deferer@gnu.test cannot be resolved at this time: try later",
        leaves(("defer", "try later")),
    ),
    "defer without message (exim: unknown error)": (
        """adb@gnu.test cannot be resolved at this time: unknown error
    <-- d102-101@gnu.test
    <-- d102-100@gnu.test""",
        leaves(("defer", "")),
    ),
    "discarded": ("mail to bh@gnu.test is discarded", leaves(("blackhole", ""))),
    "pipe text that looks like a verdict": (
        """tricky-pipe@gnu.test -> |/bin/echo x is undeliverable: really
  transport = address_pipe""",
        leaves(("pipe", "|/bin/echo x is undeliverable: really")),
    ),
    "fail text that looks like a pipe line": (
        "tricky-fail@gnu.test is undeliverable: use a -> /b instead",
        leaves(("fail", "use a -> /b instead")),
    ),
    "multi-line message from an include file, then a child": (
        """via@gnu.test is undeliverable: closed,
# x
  nemo

more text
x@y -> /z
    <-- via@gnu.test
adb@gnu.test
    <-- via@gnu.test
  router = local_user, transport = local_delivery""",
        leaves(("fail", "closed,\n# x\n  nemo\n\nmore text\nx@y -> /z"), ("local", "adb")),
    ),
    "multi-line deferral at the end of the output": (
        "mldefer@gnu.test cannot be resolved at this time: later\nsee above\n",
        leaves(("defer", "later\nsee above")),
    ),
    "quoted local parts": (
        """"a,b"@example.org
    <-- qcomma@gnu.test
  router = offsite, transport = remote_smtp
  host 192.0.2.25 [192.0.2.25]
Nemo@gnu.test
    <-- bsl@gnu.test
  router = local_user, transport = local_delivery""",
        leaves(("address", '"a,b"@example.org'), ("local", "nemo")),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parse_group(name):
    text, expected = CASES[name]
    assert exim_truth.parse_group(text.split("\n")) == expected


def test_parse_group_rejects_unknown_lines():
    with pytest.raises(exim_truth.HarnessError):
        exim_truth.parse_group(["something exim never prints"])
    with pytest.raises(exim_truth.HarnessError):
        exim_truth.parse_group(["x@y -> |cmd *** forbidden ***"])


def test_split_output_uses_separators():
    out = "\n".join([
        "a@gnu.test -> |cmd",
        "  transport = address_pipe",
        exim_truth._sep(0),
        "  router = offsite, transport = remote_smtp",
        "  host 192.0.2.25 [192.0.2.25]",
        "b@gnu.test -> /file",
        "  transport = address_file",
        exim_truth._sep(1),
        "  router = offsite, transport = remote_smtp",
        "  host 192.0.2.25 [192.0.2.25]",
        "",
    ])  # fmt: skip
    groups = exim_truth.split_output(out, 2)
    expected = [leaves(("pipe", "|cmd")), leaves(("file", "/file"))]
    assert [exim_truth.parse_group(g) for g in groups] == expected
    with pytest.raises(exim_truth.HarnessError):
        exim_truth.split_output(out, 3)


def test_lsearch_keys():
    text = "\n".join([
        "# comment",
        "plain: a",
        "Upper b",
        "tab\tc",
        '"quoted key": d',
        '"say \\"hi\\"": e',
        '"hex\\x41\\101": f',
        "  continuation: not a key",
        "",
        ":empty-key",
        "PLAIN: duplicate",
        '"unclosed\\',
    ])  # fmt: skip
    assert exim_truth.lsearch_keys(text) == [
        "plain", "upper", "tab", "quoted key", 'say "hi"', "hexaa", "unclosed\\",
    ]  # fmt: skip


def test_quote_local_part():
    assert exim_truth.quote_local_part("x.y-z") == "x.y-z"
    assert exim_truth.quote_local_part("-x") == '"-x"'
    assert exim_truth.quote_local_part('a "b"') == '"a \\"b\\""'

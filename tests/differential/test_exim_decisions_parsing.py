# SPDX-License-Identifier: GPL-3.0-or-later
"""exim_decisions' reading of exim output, on outputs captured from exim 4.96 (no Docker)."""

from __future__ import annotations

import exim_decisions as dec
import exim_truth

# exim -bt on the secondary-like configuration (stock exim, no transport_pfr), one group each.
PIPE = """\
xg@gnu.test -> |/usr/bin/logger xg
*** Error in setting up pipe, file, or autoreply:
pipe_transport unset in system_aliases router
"""
FILE_BEFORE_FAIL = """\
file-fail@gnu.test is undeliverable: moved away
file-fail@gnu.test -> /var/spool/file-fail
*** Error in setting up pipe, file, or autoreply:
file_transport unset in system_aliases router
"""
CHILD_FAILS = """\
inner@fsf.test is undeliverable: gone
    <-- outer@fsf.test
x@r.example
    <-- outer@fsf.test
  router = offsite, transport = remote_smtp
  host 192.0.2.25 [192.0.2.25]
"""
# the patched exim: transport_pfr routes the alias itself to the primary
PUNTED = """\
inner@fsf.test
    <-- outer@fsf.test
  router = system_aliases, transport = to_primary
Adb@fsf.test
    <-- outer@fsf.test
  router = punt, transport = to_primary
"""


def _parse(text):
    return dec.parse_secondary_group(text.split("\n"))


def test_pfr_child_is_reported():
    found = _parse(PIPE)
    assert found["other"] == {("pfr", "|/usr/bin/logger xg")}
    assert not found["deliver"] and not found["punt"] and found["self"] is None


def test_address_itself_fails_after_a_file():
    found = _parse(FILE_BEFORE_FAIL)
    assert found["self"] == "fail"
    assert found["other"] == {("fail", "moved away"), ("pfr", "/var/spool/file-fail")}


def test_child_failure_is_not_the_address_itself():
    found = _parse(CHILD_FAILS)
    assert found["self"] is None
    assert found["deliver"] == {"x@r.example"}
    assert found["other"] == {("fail", "gone")}


def test_to_primary_is_a_punt_whatever_the_router():
    found = _parse(PUNTED)
    assert found["punt"] == {"inner@fsf.test", "adb@fsf.test"}
    assert not found["deliver"] and not found["other"]


def test_smtp_replies_and_rcpt_quoting():
    out = (
        "\n**** SMTP testing session\n\n220 mx ESMTP\r\n250-mx Hello\r\n250 HELP\r\n"
        "250 OK\r\n550-a\r\n550 b\r\n221 bye\r\n"
    )
    assert dec.parse_replies(out) == [
        ("220", "mx ESMTP"),
        ("250", "mx Hello\nHELP"),
        ("250", "OK"),
        ("550", "a\nb"),
        ("221", "bye"),
    ]
    assert dec.rcpt_address("a b@gnu.test") == '"a b"@gnu.test'
    assert dec.rcpt_address("x@y@gnu.test") == '"x@y"@gnu.test'
    assert not dec.sendable("a\nb@gnu.test")
    assert [dec.answer_class(c) for c in ("250", "451", "550")] == ["accept", "defer", "reject"]


def test_relocation_of_include_paths():
    text = 'a: :include:/com/x, ":include: /com/y z"\nb: :include:rel\n'
    got = dec.relocate_includes(text, "/g/generations/1", alias_file=True)
    assert got == (
        'a: :include:/g/generations/1/include/com/x, ":include: /g/generations/1/include/com/y z"\n'
        "b: :include:rel\n"
    )
    assert exim_truth.lsearch_keys(got) == ["a", "b"]

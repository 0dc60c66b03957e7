# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The lsearch file format as exim 4.96 reads it (src/lookups/lsearch.c).

Private to smartmx.exim.  Rules taken from the code, not the manual:

* a key line starts in column one; it is not empty and does not start with
  ``#``; the key ends at a colon or white space, or is a double-quoted string
  with backslash escapes;
* after the key: optional white space, an optional colon, white space;
* continuation lines start with white space, which becomes one blank;
* an empty (or all-blank) line or a ``#`` line ENDS the entry: indented lines
  after it belong to nobody and are silently dropped;
* trailing white space of every line is removed;
* keys are compared case-insensitively (ASCII only) and the first match wins.
"""

from __future__ import absolute_import, division, print_function

import re

from ._alias_address import C_SPACE, ascii_lower

_ESC = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_OCT = "01234567"
_HEX = "0123456789abcdefABCDEF"
_PLAIN_KEY_END = re.compile(r"[^: \t\n\v\f\r]*").match
_PLAIN_KEY_LINE = re.compile(r"([^: \t\n\v\f\r]*)[ \t\n\v\f\r]*(:[ \t\n\v\f\r]*)?").match
_AFTER_KEY = re.compile(r"[ \t\n\v\f\r]*(:[ \t\n\v\f\r]*)?").match


def _escape(s, i):
    """string_interpret_escape(): s[i] is a backslash; return (char, last index)."""
    if i + 1 >= len(s):
        return s[i], i
    i += 1
    c = s[i]
    if c in _OCT:
        val = int(c)
        for _digit in range(2):
            if i + 1 < len(s) and s[i + 1] in _OCT:
                i += 1
                val = val * 8 + int(s[i])
            else:
                break
        return chr(val & 0xFF), i
    if c == "x":
        val = 0
        for _digit in range(2):
            if i + 1 < len(s) and s[i + 1] in _HEX:
                i += 1
                val = val * 16 + int(s[i], 16)
            else:
                break
        return chr(val), i
    return _ESC.get(c, c), i


def _read_key(line):
    """Return (key, index after key, quoted)."""
    if line[0] == '"':
        out = []
        i = 1
        n = len(line)
        while i < n and line[i] != '"':
            if line[i] == "\\":
                c, i = _escape(line, i)
                out.append(c)
            else:
                out.append(line[i])
            i += 1
        if i < n:
            i += 1
        return "".join(out), i, True
    i = _PLAIN_KEY_END(line).end()
    return line[:i], i, False


class RawEntry:
    """One key line and its continuation lines."""

    __slots__ = ("backslash", "colon", "data", "dropped", "key", "line", "spans")

    def __init__(self, key, line):
        self.key = key
        self.line = line
        self.data = ""
        self.spans = [(0, line)]  # (offset in data, physical line)
        self.colon = False
        self.dropped = ()  # indented lines after a blank or comment line
        self.backslash = ()  # lines ending in a backslash that is continued


def _after_key(text, i):
    m = _AFTER_KEY(text, i)
    return m.end(), m.group(1) is not None


# The first character of a line that can follow a one-line fast-lane entry (a
# new key line: not blank, comment or continuation).
_NOT_NEXT = frozenset(" \t\n\v\f\r#")


def _close(entry, parts, ended, last):
    """An entry ends at a new key line: join its data, note a trailing backslash."""
    entry.data = "".join(parts)
    if not ended and parts[-1].endswith("\\"):
        entry.backslash += (last,)


def read_lsearch(text, fast=None):
    """Split lsearch text into entries, in file order (duplicates kept).

    Every entry is a RawEntry, except where ``fast`` is given: a key line that
    is followed by another key line (so the entry is that one line) and that
    ``fast(line)`` matches becomes the tuple (match, line number).
    """
    entries = []
    current = None
    ended = False  # a blank or comment line ended the current entry
    parts = []
    length = 0
    last = 0  # physical line of the last piece of the current entry
    lines = text.split("\n")
    count = len(lines)
    # fast() on every line at once (map runs in C); a match is a key line.
    matches = list(map(fast, lines)) if fast is not None else [None] * count
    matches.append(None)
    for lineno, raw in enumerate(lines, 1):
        m = matches[lineno - 1]
        if m is not None and lineno < count:
            after = matches[lineno]
            if after is not None or (lines[lineno][:1] not in _NOT_NEXT and lines[lineno]):
                if current is not None:
                    _close(current, parts, ended, last)
                    current = None
                entries.append((m, lineno))
                continue
        line = raw.rstrip(C_SPACE)
        if not line or line[0] == "#":
            ended = current is not None
            continue
        if line[0] in C_SPACE:
            if current is None:
                continue
            if ended:
                current.dropped += (lineno,)
                continue
            if parts[-1].endswith("\\"):
                current.backslash += (last,)
            body = " " + line.lstrip(C_SPACE)
            current.spans.append((length + 1, lineno))
            parts.append(body)
            length += len(body)
            last = lineno
            continue
        if current is not None:
            _close(current, parts, ended, last)
        if line[0] == '"':
            key, i, _quoted = _read_key(line)
            current = RawEntry(key, lineno)
            i, current.colon = _after_key(line, i)
        else:  # _read_key and _after_key in one match
            m = _PLAIN_KEY_LINE(line)
            current = RawEntry(m.group(1), lineno)
            i = m.end()
            current.colon = m.group(2) is not None
        parts = [line[i:]]
        length = len(parts[0])
        last = lineno
        ended = False
        entries.append(current)
    if current is not None:
        current.data = "".join(parts)
    return entries


def line_of(entry, offset):
    """Physical line of a data offset."""
    spans = entry.spans
    if len(spans) == 1:
        return spans[0][1]
    lo, hi = 0, len(spans) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if spans[mid][0] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return spans[lo][1]


def fold_key(key):
    """Keys match case-insensitively (strncmpic, ASCII)."""
    return ascii_lower(key)

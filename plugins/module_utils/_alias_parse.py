# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Redirection lists as exim 4.96 reads them (parse_forward_list, src/parse.c).

Private to smartmx.exim.  ``parse_list`` turns the data of one alias (or the
text of one :include: file) into items, stopping where exim stops: at a
syntax error, or at :fail:, :defer: or :blackhole:, whose message is the
whole rest of the list.
"""

from __future__ import absolute_import, division, print_function

import re

from ._alias_address import C_SPACE, AddressError, extract_address, find_address_end
from ._alias_shortcuts import SHORTCUTS

# An item made only of atoms and dots, with an optional plain domain: exim's
# full parser gives the same answer for it, so the fast path is safe.
_ATOM = r"[^\x00-\x20()<>@,;:\\\".\[\]\x7f]+"
_SIMPLE = re.compile(
    rf"({_ATOM}(?:\.{_ATOM})*)(?:@([A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9][A-Za-z0-9-]*)*))?\Z"
)
# A whole list that is one such item (not a pipe or file), with white space around.
_DOMAIN = r"[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9][A-Za-z0-9-]*)*"
_ONE = re.compile(rf"[ \t\n\v\f\r]*((?![|/]){_ATOM}(?:\.{_ATOM})*(@{_DOMAIN})?)[ \t\n\v\f\r]*\Z").match
_HARD = re.compile(r'[\\"(<#\n]')
_HARD_NOT_NL = re.compile(r'[\\"(<#]').search
# A whole list that is one double-quoted pipe or file without '@', backslash or quote.
_QUOTED_PFR = re.compile(r'"([|/](?:[^"\\\n@]*[^"\\\n@ \t\v\f\r])?)"[ \t\n\v\f\r]*\Z').match
_UNKNOWN = ":unknown:"

# A whole lsearch line whose entry is one line of plain items: a plain key
# (maximal, so no backtracking into it), an optional colon, then addresses and
# local parts as _ONE takes them (without '#', which could start a comment or
# a filter) separated by commas, or one quoted pipe, file or directory as
# _QUOTED_PFR takes it.
_ATOM_NO_HASH = r"[^\x00-\x20()<>@,;:\\\".\[\]\x7f#]+"
_PLAIN_ITEM = rf"(?![|/]){_ATOM_NO_HASH}(?:\.{_ATOM_NO_HASH})*(?:@{_DOMAIN})?"
FAST_LINE = re.compile(
    r'([^: \t\n\v\f\r"#][^: \t\n\v\f\r]*)(?![^: \t\n\v\f\r])[ \t\v\f\r]*(?::[ \t\v\f\r]*)?'
    rf"(?:({_PLAIN_ITEM}(?:[ \t\v\f\r]*,[ \t\v\f\r]*{_PLAIN_ITEM})*)"
    r'|"([|/](?:[^"\\\n@]*[^"\\\n@ \t\v\f\r])?)")'
    r"[ \t\v\f\r]*\Z"
).match
_BLANKS = " \t\v\f\r"


def fast_items(match, line):
    """The items of a FAST_LINE match, with their line."""
    value = match.group(2)
    if value is None:
        value = match.group(3)
        kind = "pipe" if value[0] == "|" else "directory" if value[-1] == "/" else "file"
        return [{"type": kind, "value": value, "line": line}]
    if "," not in value:
        return [{"type": "address" if "@" in value else "local", "value": value, "line": line}]
    items = []
    for piece in value.split(","):
        piece = piece.strip(_BLANKS)
        items.append({"type": "address" if "@" in piece else "local", "value": piece, "line": line})
    return items


def Item(kind, value, offset, backslash=False):
    """One parsed item as plain data: type, value, offset (and backslash)."""
    if backslash:
        return {"type": kind, "value": value, "offset": offset, "backslash": True}
    return {"type": kind, "value": value, "offset": offset}


class Parsed:
    """The items of one list and how the list ends."""

    __slots__ = ("items", "message", "stop", "stop_offset")

    def __init__(self):
        self.items = []
        self.stop = None  # None, "fail", "defer", "blackhole", "error"
        self.message = ""
        self.stop_offset = 0


def _special(s, start, kind, skip):
    rest = s[start + skip :]
    i = 0
    while i < len(rest) and rest[i] in C_SPACE:
        i += 1
    return rest[i:].rstrip("\n")


def _address_item(item, offset):
    """An item that is not special: address, local part, pipe, file or directory."""
    if item[:1] in ("|", "/") and "@" not in item:
        return None, item  # without '@' it cannot parse as an address with a domain: pfr
    recipient = None
    has_domain = False
    backslash = False
    error = None
    if item[:1] == "\\":
        try:
            recipient, has_domain = extract_address(item[1:])
            if has_domain:
                recipient = None
            else:
                backslash = True
        except AddressError:
            recipient = None
    if recipient is None:
        fast = _SIMPLE.match(item) if SHORTCUTS.on else None
        if fast:
            recipient, has_domain = item, fast.group(2) is not None
        else:
            try:
                recipient, has_domain = extract_address(item)
            except AddressError as exc:
                error = str(exc)
    if item[:1] in ("|", "/") and (recipient is None or not has_domain):
        return None, item
    if recipient is None:
        return error, None
    if has_domain or backslash:
        return None, Item("address" if has_domain else "local", recipient, offset, backslash)
    return None, Item("local", recipient, offset)


def _pfr(text, inquote, offset):
    if inquote and "\\" in text:
        out = []
        i = 0
        while i < len(text):
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            out.append(text[i])
            i += 1
        text = "".join(out)
    if text[0] == "|":
        kind = "pipe"
    elif text.endswith("/"):
        kind = "directory"
    else:
        kind = "file"
    return Item(kind, text, offset)


def _spans(s):
    """(start, end, next) of every raw item, as parse_forward_list walks them."""
    n = len(s)
    i = 0
    easy = _HARD.search(s) is None
    while True:
        while i < n and (s[i] in C_SPACE or s[i] == ","):
            i += 1
        if i < n and s[i] == "#":
            while i < n and s[i] != "\n":
                i += 1
            continue
        if i >= n:
            return
        if easy and s[i] != "@":
            nxt = s.find(",", i)
            if nxt < 0:
                nxt = n
        else:
            nxt = find_address_end(s, i, True)
        end = nxt
        while end > i and s[end - 1] in C_SPACE:
            end -= 1
        yield i, end, nxt
        i = nxt


_FILTER_TAG = re.compile(r"#[ \t]*(?:exim|sieve)[ \t]*filter", re.IGNORECASE)


def is_filter(data):
    """rda_is_filter(): data starting with '# Exim filter' or '# Sieve filter' is a filter."""
    return _FILTER_TAG.match(data.lstrip(" \t\n\v\f\r")) is not None


def _fast_list(s):
    """Items of a list made only of plain addresses and local parts, else None."""
    items = []
    pos = 0
    simple = _SIMPLE.match
    for piece in s.split(","):
        start = pos
        pos += len(piece) + 1
        value = piece.lstrip(C_SPACE)
        start += len(piece) - len(value)
        value = value.rstrip(C_SPACE)
        if not value:
            continue
        if value[0] in "|/":
            if "@" in value:
                return None
            items.append(_pfr(value, False, start))
            continue
        if value[0] in ":@":
            return None
        m = simple(value)
        if m is None:
            return None
        items.append({"type": "address" if m.group(2) else "local", "value": value, "offset": start})
    return items


def parse_list(s):
    """Parse one redirection list (alias data or include text) into a Parsed."""
    out = Parsed()
    if not SHORTCUTS.on:
        pass
    elif _HARD_NOT_NL(s) is None:
        one = _ONE(s)
        if one is not None:
            kind = "address" if one.group(2) is not None else "local"
            out.items.append({"type": kind, "value": one.group(1), "offset": one.start(1)})
            return out
        fast = _fast_list(s.replace("\n", ",") if "\n" in s else s)
        if fast is not None:
            out.items = fast
            return out
    else:
        quoted = _QUOTED_PFR(s)
        if quoted is not None:
            out.items.append(_pfr(quoted.group(1), False, quoted.start(1)))
            return out
    for start, end, _nxt in _spans(s):
        inquote = False
        if s[start] == '"' and end - start >= 1 and s[end - 1] == '"' and end - start > 1:
            start += 1
            end -= 1
            inquote = True
            while start < end and s[start] in C_SPACE:
                start += 1
            while end > start and s[end - 1] in C_SPACE:
                end -= 1
        item = s[start:end]
        if _UNKNOWN.startswith(item):
            out.items.append(Item("unknown", item, start))
            continue
        if not _stop_or_item(s, start, item, inquote, out):
            return out
    return out


def _stop_or_item(s, start, item, inquote, out):
    """Handle one item; return False when the list ends here."""
    if s[start] != ":":
        return _plain_item(item, start, inquote, out)
    for word, kind in ((":defer:", "defer"), (":blackhole:", "blackhole"), (":fail:", "fail")):
        if s.startswith(word, start):
            colon = s.index(":", start + 1) + 1
            msg = _special(s, colon, kind, 0)
            out.items.append(Item(kind, "" if kind == "blackhole" else msg, start))
            out.stop, out.message, out.stop_offset = kind, msg, start
            return False
    if s.startswith(":include:", start):
        path = item[9:].lstrip(C_SPACE)
        error = None
        if not path:
            error = "file name missing after :include:"
        elif len(path) > 255:
            error = f'included file name "{s[start + 9 :].lstrip(C_SPACE)}" is too long'
        elif path[0] != "/":
            error = f'included file "{path}" is not an absolute path'
        if error:
            out.stop, out.message, out.stop_offset = "error", error, start
            return False
        out.items.append(Item("include", path, start))
        return True
    return _plain_item(item, start, inquote, out)


def _plain_item(item, start, inquote, out):
    error, result = _address_item(item, start)
    if error is not None:
        if error == "empty address":
            return True
        out.stop, out.message, out.stop_offset = "error", f'{error} in "{item}"', start
        return False
    if isinstance(result, dict):
        out.items.append(result)
    elif result is not None:
        out.items.append(_pfr(result, inquote, start))
    return True

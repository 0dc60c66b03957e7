# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Address syntax as exim 4.96 reads it in redirection lists (src/parse.c).

A port of ``parse_extract_address`` and its helpers with exim's default
settings (no domain literals, no excess angle brackets, no trailing-dot
stripping, no UTF-8 domains, no group syntax).  Private to smartmx.exim.
"""

from __future__ import absolute_import, division, print_function

# C isspace() in the "C" locale.
C_SPACE = " \t\n\v\f\r"
_SPECIALS = ' ()<>@,;:\\".[]\x7f'


class AddressError(Exception):
    """An address that exim refuses, with exim's message."""


def is_special(c):
    """mac_iscntrl_or_special(): control characters, space and RFC 822 specials."""
    return c == "" or ord(c) < 32 or c in _SPECIALS


def _ch(s, i):
    return s[i] if i < len(s) else ""


def skip_ws(s, i):
    n = len(s)
    while i < n and s[i] in C_SPACE:
        i += 1
    return i


def skip_comment(s, i):
    """Skip white space and (possibly nested) comments; return new index."""
    n = len(s)
    while i < n:
        i = skip_ws(s, i)
        if _ch(s, i) != "(":
            break
        level = 1
        i += 1
        while i < n:
            c = s[i]
            if c == "(":
                level += 1
            elif c == ")":
                level -= 1
                if level <= 0:
                    i += 1
                    break
            elif c == "\\" and i + 1 < n:
                i += 1
            i += 1
    return i


def read_local_part(s, i, allow_null):
    """Dot-separated words.  Returns (text, index); raises AddressError."""
    out = []
    first = True
    n = len(s)
    while True:
        i = skip_comment(s, i)
        word = []
        if _ch(s, i) == '"':
            word.append('"')
            i += 1
            closed = False
            while i < n:
                c = s[i]
                if c == '"':
                    closed = True
                    break
                word.append(c)
                if c == "\\" and i + 1 < n:
                    i += 1
                    word.append(s[i])
                i += 1
            if not closed:
                raise AddressError("unmatched doublequote in local part")
            i += 1
            word.append('"')
        else:
            while i < n and (not is_special(s[i]) or s[i] == "\\"):
                c = s[i]
                word.append(c)
                i += 1
                if c == "\\" and i < n:
                    word.append(s[i])
                    i += 1
        i = skip_comment(s, i)
        if not word and _ch(s, i) != ".":
            if first and not out and not allow_null:
                raise AddressError("missing or malformed local part")
            return "".join(out), i
        out.extend(word)
        first = False
        if _ch(s, i) != ".":
            return "".join(out), i
        while _ch(s, i) == ".":
            out.append(".")
            i += 1


def read_domain(s, i, literals=False):
    """Dot-separated atoms of letters, digits and hyphens.

    ``literals`` is exim's msg_id_literals flag, which parse_extract_address
    passes for a plain local@domain address: a [...] literal of printable
    characters is then accepted.
    """
    i = skip_comment(s, i)
    if _ch(s, i) == "[":
        if not literals:
            raise AddressError("domain literals not allowed")
        j = i + 1
        if s[j : j + 5].lower() in ("ipv6:", "ipv4:"):
            j += 5
        while j < len(s) and (33 <= ord(s[j]) <= 90 or 94 <= ord(s[j]) <= 126):
            j += 1
        if _ch(s, j) != "]":
            raise AddressError("malformed domain literal")
        return s[i : j + 1], skip_comment(s, j + 1)
    out = []
    n = len(s)
    while True:
        start = len(out)
        if _ch(s, i) != "-":
            while i < n and (s[i].isascii() and (s[i].isalnum() or s[i] == "-")):
                out.append(s[i])
                i += 1
        i = skip_comment(s, i)
        if len(out) == start:
            raise AddressError("domain missing or malformed")
        if _ch(s, i) != ".":
            return "".join(out), i
        out.append(".")
        i = skip_comment(s, i + 1)


def read_route(s, i):
    commas = False
    while _ch(s, i) == "@":
        _dom, i = read_domain(s, i + 1)
        if _ch(s, i) != ",":
            break
        i = skip_comment(s, i + 1)
        commas = True
    if _ch(s, i) == ":":
        return skip_comment(s, i + 1)
    raise AddressError("colon expected after route list" if commas else "no local part")


def read_addr_spec(s, i, term):
    """Returns (address, has_domain, index)."""
    local, i = read_local_part(s, i, False)
    c = _ch(s, i)
    if c == term:
        return local, False, i
    if c != "@":
        raise AddressError(f'"@" or "." expected after "{local}"')
    dom, i = read_domain(s, i + 1)
    return local + "@" + dom, True, i


def _angle(s, i):
    i = skip_comment(s, i + 1)
    routed = False
    if _ch(s, i) == "@":
        i = read_route(s, i)
        routed = True
    addr, has_domain, i = read_addr_spec(s, i, ">")
    if routed and not has_domain:
        raise AddressError("domain missing in source-routed address")
    if _ch(s, i) != ">":
        if i >= len(s):
            raise AddressError("'>' missing at end of address")
        raise AddressError(f"malformed address: {s[i : i + 32]} may not follow {s[:i]}")
    return addr, has_domain, skip_comment(s, i + 1)


def extract_address(s):
    """parse_extract_address(): return (address, has_domain) or raise AddressError."""
    i = skip_comment(s, 0)
    local, i = read_local_part(s, i, True)
    c = _ch(s, i)
    if c not in ("@", "<"):
        if c in ("", ";"):
            if not local:
                raise AddressError("empty address")
            return _finish(s, i, local, False)
        while _ch(s, i) != "<":
            try:
                local, i = read_local_part(s, i, False)
            except AddressError as exc:
                raise AddressError(f'{exc} (expected word or "<")') from None
        c = "<"
    if c == "<":
        addr, has_domain, i = _angle(s, i)
        return _finish(s, i, addr, has_domain)
    if not local:
        i = read_route(s, i)
        addr, has_domain, i = read_addr_spec(s, i, "")
        if not has_domain:
            raise AddressError("domain missing in source-routed address")
        return _finish(s, i, addr, True)
    dom, i = read_domain(s, i + 1, literals=True)
    return _finish(s, i, local + "@" + dom, True)


def _finish(s, i, addr, has_domain):
    if i < len(s):
        raise AddressError(f"malformed address: {s[i : i + 32]} may not follow {s[:i]}")
    if len(addr) > 256:
        raise AddressError(f"address is ridiculously long: {addr[:64]}...")
    return addr, has_domain


def find_at(s):
    """parse_find_at(): index of the unescaped '@' of the domain, or -1."""
    t = len(s) - 1
    while t >= 0:
        if s[t] == "@":
            count = 0
            tt = t - 1
            while tt > 0 and s[tt] == "\\":
                count += 1
                tt -= 1
            if count % 2 == 0:
                return t
        elif s[t] == '"':
            return -1
        t -= 1
    return -1


def find_address_end(s, i, nl_ends):
    """parse_find_address_end(): end index of the list item starting at i."""
    n = len(s)
    source_routing = _ch(s, i) == "@"
    no_term = 1 if source_routing else 0
    while i < n and (s[i] != "," or no_term > 0) and (s[i] != "\n" or not nl_ends):
        c = s[i]
        if c == "\\" and i + 1 < n:
            i += 2
        elif c == '"':
            i += 1
            while i < n and (s[i] != "\n" or not nl_ends):
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                elif s[i] == '"':
                    i += 1
                    break
                i += 1
        elif c == "(":
            level = 1
            i += 1
            while i < n and (s[i] != "\n" or not nl_ends):
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                elif s[i] == "(":
                    level += 1
                elif s[i] == ")":
                    level -= 1
                    if level <= 0:
                        i += 1
                        break
                i += 1
        else:
            if c == "<":
                source_routing = _ch(s, i + 1) == "@"
                no_term = 2 if source_routing else 1
            elif c == ">" or (source_routing and c == ":"):
                no_term -= 1
            i += 1
    return i


def split_address(address):
    """deliver_split_address(): (dequoted local part, lower-cased domain)."""
    at = address.rfind("@")
    local = address[:at]
    if '"' not in local and "\\" not in local:
        return local, ascii_lower(address[at + 1 :])
    out = []
    i = 0
    n = len(local)
    while i < n:
        c = local[i]
        if c == '"':
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = local[i]
        out.append(c)
        i += 1
    return "".join(out), ascii_lower(address[at + 1 :])


_LOWER = {c: c + 32 for c in range(65, 91)}


def ascii_lower(s):
    """tolower() in the C locale: only A-Z change."""
    if s.isascii():
        return s.lower()
    return s.translate(_LOWER)

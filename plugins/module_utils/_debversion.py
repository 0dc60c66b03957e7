# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Debian package version comparison, as dpkg orders versions.

Private to smartmx.exim.  A version is ``[epoch:]upstream[-revision]``: the
epoch compares as a number, then upstream and revision each by dpkg's
``verrevcmp``: alternately a run of non-digits (letters sort before other
characters, ``~`` before everything, even the end of the string) and a run of
digits (as a number).
"""

from __future__ import absolute_import, division, print_function

import functools
import re

_VALID = re.compile(r"\A(?:[0-9]+:)?[0-9A-Za-z][0-9A-Za-z.+~:-]*\Z")


class VersionError(ValueError):
    """Not a Debian version string."""


def split(version):
    """``(epoch, upstream, revision)`` of a version string; raises VersionError."""
    if not isinstance(version, str):
        raise VersionError(f"a version must be a string, got {type(version).__name__}")
    text = version.strip()
    if not _VALID.match(text):
        raise VersionError(f"{version!r} is not a Debian version")
    epoch = 0
    head, sep, rest = text.partition(":")
    if sep and head.isdigit():
        epoch = int(head)
        text = rest
    upstream, sep, revision = text.rpartition("-")
    if not sep:
        upstream, revision = text, ""
    return epoch, upstream, revision


def _order(char):
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a, b):
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare(a, b):
    """-1, 0 or 1 as version ``a`` sorts before, equal to or after ``b``."""
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    got = _verrevcmp(ua, ub) or _verrevcmp(ra, rb)
    return (got > 0) - (got < 0)


sort_key = functools.cmp_to_key(compare)


def newest(versions):
    """The newest of some versions, or None."""
    versions = list(versions)
    return max(versions, key=sort_key) if versions else None


def strip_suffix(version, suffix):
    """The version without a trailing local suffix (``+smartmx1``), and whether it had one."""
    if suffix and version.endswith(suffix):
        return version[: -len(suffix)], True
    return version, False


__all__ = ["VersionError", "compare", "newest", "sort_key", "split", "strip_suffix"]

# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The list files a secondary MX reads, rendered from a secondary_routes result.

Private to smartmx.exim.  ``secondary_lists(table)`` returns
``{"rcpt": text, "punt": text, "users": text, "strategy": text}``: three
lsearch files, sorted, and the strategy the lists were computed for:

* ``rcpt``: ``accept``, or ``defer <reason>``; an address not listed is
  refused (550) while the lists are fresh;
* ``punt``: a short reason (``user``, ``procmail``, ``forward``, ``pfr``) for
  every address handed whole to the primary before the aliases router;
* ``users``: one local user name a line (no value): the secondary hands an
  address whose local part is a user to the primary when no alias took it
  (``\\adb`` in an alias named ``adb``);
* ``strategy``: ``patch`` or ``precompute`` and a newline; the secondary
  defers every recipient (451) while it differs from its own strategy.

A key is double-quoted (with ``\\`` before ``"`` and ``\\``) when it holds white
space, a colon, a double quote or a backslash, or starts with ``#``; lsearch.c
reads such a key back exactly.  A key with a control character is never
written (secondary_routes already left it out, with an ``unsafe-key``
finding); values are one line.
"""

from __future__ import absolute_import, division, print_function

import re
from collections.abc import Mapping, Sequence

from ._aliases import AliasInputError

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]").search
_NEEDS_QUOTES = re.compile(r'[ :"\\]|\A#').search
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
PUNT_REASONS = ("user", "procmail", "forward", "pfr")


def lsearch_key(key):
    """``key`` as an lsearch key (quoted if need be), or None if it cannot be one."""
    if not key or _UNSAFE(key):
        return None
    if _NEEDS_QUOTES(key):
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return key


def one_line(text):
    """A reason as one line: control characters and runs of white space become one blank."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def _render(pairs):
    lines = []
    for address, value in sorted(pairs):
        key = lsearch_key(address)
        if key is not None:
            lines.append(f"{key}: {value}\n" if value else f"{key}\n")
    return "".join(lines)


def _mapping(table, name):
    value = table.get(name)
    if not isinstance(value, Mapping):
        raise AliasInputError(f"the secondary_routes result has no {name!r} mapping")
    return value


def secondary_lists(table):
    """{"rcpt", "punt", "users", "strategy"} texts of a secondary_routes result."""
    if not isinstance(table, Mapping):
        raise AliasInputError("input must be the result of secondary_routes (a dict)")
    rcpt = _mapping(table, "rcpt")
    defer = table.get("defer") or {}
    if not isinstance(defer, Mapping):
        raise AliasInputError("the secondary_routes result's 'defer' must be a mapping")
    rcpt_pairs = []
    for address, answer in rcpt.items():
        if answer == "accept":
            rcpt_pairs.append((str(address), "accept"))
        elif answer == "defer":
            reason = one_line(defer.get(address, ""))
            rcpt_pairs.append((str(address), f"defer {reason}" if reason else "defer"))
        elif answer != "reject":
            raise AliasInputError(f"rcpt answer {answer!r} of {address!r} is not accept, defer or reject")
    punt = table.get("punt_addresses")
    if not isinstance(punt, Sequence) or isinstance(punt, (str, bytes)):
        raise AliasInputError("the secondary_routes result has no 'punt_addresses' list")
    reasons = table.get("punt_reasons") or {}
    punt_pairs = []
    for address in punt:
        address = str(address)
        local = address[: address.rfind("@")]
        punt_pairs.append((address, one_line(reasons.get(local, "user")) or "user"))
    users = table.get("users")
    if users is None:
        users = []
    if not isinstance(users, Sequence) or isinstance(users, (str, bytes)):
        raise AliasInputError("the secondary_routes result's 'users' must be a list")
    user_pairs = [(str(u), "") for u in users]
    strategy = table.get("pfr_strategy") or "patch"
    if strategy not in ("patch", "precompute"):
        raise AliasInputError(f"pfr_strategy {strategy!r} is not patch or precompute")
    return {
        "rcpt": _render(rcpt_pairs),
        "punt": _render(punt_pairs),
        "users": _render(user_pairs),
        "strategy": strategy + "\n",
    }


__all__ = ["PUNT_REASONS", "lsearch_key", "one_line", "secondary_lists"]

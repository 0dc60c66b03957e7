# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The one SMTP policy of every MX, rendered as exim configuration text.

Private to smartmx.exim.  ``exim_policy(policy)`` checks a policy mapping
(inventory variable ``smartmx_policy``) and returns the exim text both MX
roles paste into their configurations, byte for byte the same:

* ``main``: main-section options (``message_size_limit``, ``recipients_max``);
* ``rcpt``: ACL statements for the RCPT ACL, run for every outside client
  before the recipient is judged (HELO, sender, DNS blocklists, rate limit);
* ``sha256``: the digest of ``main`` and ``rcpt``, one value to compare between
  hosts.

Nothing in the text depends on the host it is rendered for: what differs
between hosts (the host's own names and addresses) is read by exim at run time
(``$primary_hostname``, ``@[]``).
"""

from __future__ import absolute_import, division, print_function

import hashlib
import re
from collections.abc import Mapping, Sequence

DEFAULTS = {
    "message_size_limit": "50M",
    "recipients_max": 1000,
    "helo_required": True,
    "helo_reject_own_names": True,
    "verify_sender": True,
    "dnsbl": [],
    "rate_limit": None,
}

_SIZE = re.compile(r"\A[1-9][0-9]*[KMG]?\Z")
_ZONE = re.compile(r"\A(?=.{1,253}\Z)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z")
_PERIOD = re.compile(r"\A[1-9][0-9]*[smhdw]\Z")


class PolicyError(ValueError):
    """The policy mapping is not one this collection can render."""


def _bool(policy, key):
    value = policy[key]
    if not isinstance(value, bool):
        raise PolicyError(f"{key} must be true or false, got {value!r}")
    return value


def _count(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{key} must be a whole number of at least 1, got {value!r}")
    return value


def check(policy):
    """The policy with defaults filled in; raises PolicyError naming the bad key."""
    if policy is None:
        policy = {}
    if not isinstance(policy, Mapping):
        raise PolicyError(f"the policy must be a mapping, got {type(policy).__name__}")
    unknown = sorted(str(k) for k in policy if k not in DEFAULTS)
    if unknown:
        raise PolicyError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    merged = dict(DEFAULTS)
    merged.update(policy)
    size = str(merged["message_size_limit"])
    if not _SIZE.match(size):
        raise PolicyError(f"message_size_limit must be a size such as 50M, got {size!r}")
    merged["message_size_limit"] = size
    _count(merged["recipients_max"], "recipients_max")
    for key in ("helo_required", "helo_reject_own_names", "verify_sender"):
        _bool(merged, key)
    zones = merged["dnsbl"]
    if zones is None:
        zones = []
    if not isinstance(zones, Sequence) or isinstance(zones, (str, bytes)):
        raise PolicyError(f"dnsbl must be a list of DNS zones, got {zones!r}")
    for zone in zones:
        if not isinstance(zone, str) or not _ZONE.match(zone):
            raise PolicyError(f"dnsbl: {zone!r} is not a DNS zone name")
    merged["dnsbl"] = list(zones)
    limit = merged["rate_limit"]
    if limit is not None:
        if not isinstance(limit, Mapping) or set(limit) - {"rate", "period"} or "rate" not in limit:
            raise PolicyError(f"rate_limit must be null or {{rate: N, period: 1m}}, got {limit!r}")
        rate = _count(limit["rate"], "rate_limit.rate")
        period = str(limit.get("period", "1m"))
        if not _PERIOD.match(period):
            raise PolicyError(f"rate_limit.period must be a time such as 1m or 1h, got {period!r}")
        merged["rate_limit"] = {"rate": rate, "period": period}
    return merged


def _rcpt_lines(policy):
    lines = []
    if policy["helo_required"]:
        lines += [
            "  deny    condition = ${if eq{$sender_helo_name}{}}",
            "          message = HELO or EHLO first, please",
        ]
    if policy["helo_reject_own_names"]:
        lines += [
            "  deny    condition = ${if eqi{$sender_helo_name}{$primary_hostname}}",
            "          message = you are not me ($sender_helo_name)",
            "  deny    condition = ${if isip{$sender_helo_name}}",
            "          condition = ${if match_ip{$sender_helo_name}{@[]}}",
            "          message = you are not me ($sender_helo_name)",
        ]
    if policy["dnsbl"]:
        lines += [
            "  deny    dnslists = " + " : ".join(policy["dnsbl"]),
            "          message = $sender_host_address is listed at $dnslist_domain",
        ]
    limit = policy["rate_limit"]
    if limit:
        lines += [
            f"  defer   ratelimit = {limit['rate']} / {limit['period']} / per_rcpt / $sender_host_address",
            "          message = too many recipients from $sender_host_address, slow down",
        ]
    if policy["verify_sender"]:
        lines += [
            "  require verify = sender",
            "          message = the sender address <$sender_address> cannot be verified",
        ]
    return lines


def exim_policy(policy):
    """{"main": text, "rcpt": text, "sha256": hex, "policy": the checked policy}."""
    checked = check(policy)
    main = (
        "# The one policy of every MX (smartmx_policy), identical on each of them.\n"
        f"message_size_limit = {checked['message_size_limit']}\n"
        f"recipients_max = {checked['recipients_max']}\n"
    )
    lines = ["  # The one policy of every MX (smartmx_policy), identical on each of them."]
    rcpt = "".join(line + "\n" for line in lines + _rcpt_lines(checked))
    digest = hashlib.sha256((main + "\0" + rcpt).encode("utf-8")).hexdigest()
    return {"main": main, "rcpt": rcpt, "sha256": digest, "policy": checked}


__all__ = ["DEFAULTS", "PolicyError", "check", "exim_policy"]

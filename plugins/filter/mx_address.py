# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def mx_address(host_vars):
    """The address other MXes reach a host at: smartmx_mx_address, else its default IPv4 address."""
    if not isinstance(host_vars, Mapping):
        raise AnsibleFilterError("smartmx.exim.mx_address: input must be one host's hostvars")
    name = host_vars.get("inventory_hostname", "?")
    explicit = host_vars.get("smartmx_mx_address")
    if explicit:
        return str(explicit)
    facts = host_vars.get("ansible_facts") or {}
    address = (facts.get("default_ipv4") or {}).get("address")
    if not address:
        raise AnsibleFilterError(
            f"smartmx.exim.mx_address: {name} has no smartmx_mx_address and no gathered "
            "default IPv4 address: gather its facts first, or set smartmx_mx_address"
        )
    return str(address)


class FilterModule:
    """smartmx.exim.mx_address."""

    def filters(self):
        return {"mx_address": mx_address}

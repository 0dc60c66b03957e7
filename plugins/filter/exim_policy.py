# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.module_utils._exim_policy import PolicyError, exim_policy


def exim_policy_filter(policy):
    """Jinja2 adapter for exim_policy."""
    try:
        return exim_policy(policy)
    except PolicyError as exc:
        raise AnsibleFilterError(f"smartmx.exim.exim_policy: smartmx_policy: {exc}") from exc


class FilterModule:
    """smartmx.exim.exim_policy."""

    def filters(self):
        return {"exim_policy": exim_policy_filter}

# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.module_utils._alias_lists import secondary_lists
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import AliasInputError


def secondary_lists_filter(table):
    """Jinja2 adapter for secondary_lists."""
    try:
        return secondary_lists(table)
    except AliasInputError as exc:
        raise AnsibleFilterError(f"smartmx.exim.secondary_lists: {exc}") from exc


class FilterModule:
    """smartmx.exim.secondary_lists."""

    def filters(self):
        return {"secondary_lists": secondary_lists_filter}

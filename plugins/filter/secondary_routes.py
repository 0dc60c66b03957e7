# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import AliasInputError, secondary_routes


def secondary_routes_filter(
    parsed, domains, includes=None, users=None, pfr_strategy="patch", source="aliases", include_directory=None
):
    """Jinja2 adapter for secondary_routes."""
    try:
        return secondary_routes(
            parsed,
            domains,
            includes=includes,
            users=users,
            pfr_strategy=pfr_strategy,
            source=source,
            include_directory=include_directory,
        )
    except AliasInputError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise AnsibleFilterError(f"smartmx.exim.secondary_routes: {exc}{where}") from exc


class FilterModule:
    """smartmx.exim.secondary_routes."""

    def filters(self):
        return {"secondary_routes": secondary_routes_filter}

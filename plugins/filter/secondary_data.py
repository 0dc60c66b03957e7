# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.smartmx.exim.plugins.module_utils._alias_lists import secondary_lists
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import (
    AliasInputError,
    parse_aliases,
    secondary_routes,
)
from ansible_collections.smartmx.exim.plugins.module_utils._drift import DriftError, routing_plan

PLAN_KEYS = ("size", "seed", "priority_cap")


def secondary_data(
    text,
    domains,
    includes=None,
    users=None,
    pfr_strategy="patch",
    source="aliases",
    include_directory=None,
    plan=None,
):
    """parse_aliases | secondary_routes | secondary_lists (and drift_routing_plan) in one call.

    The routing table stays inside this call: only the list files, the findings
    and the plan are returned (a table of 100,000 routes costs Ansible's
    templating far more than computing it).
    """
    if plan is not None and (not isinstance(plan, Mapping) or set(plan) - set(PLAN_KEYS)):
        keys = ", ".join(PLAN_KEYS)
        raise AnsibleFilterError(f"smartmx.exim.secondary_data: plan must be a dict of {keys}")
    source = to_text(source)
    try:
        table = secondary_routes(
            parse_aliases(text, source=source),
            domains,
            includes=includes,
            users=users,
            pfr_strategy=pfr_strategy,
            source=source,
            include_directory=include_directory,
        )
        result = {
            "files": secondary_lists(table),
            "findings": table["findings"],
            "pfr_strategy": table["pfr_strategy"],
        }
        if plan is not None:
            result["plan"] = routing_plan(table, domains[0], **dict(plan))
    except AliasInputError as exc:
        where = f" (line {exc.line})" if getattr(exc, "line", None) else ""
        raise AnsibleFilterError(f"smartmx.exim.secondary_data: {exc}{where}") from exc
    except DriftError as exc:
        raise AnsibleFilterError(f"smartmx.exim.secondary_data: {exc}") from exc
    return result


class FilterModule:
    """smartmx.exim.secondary_data."""

    def filters(self):
        return {"secondary_data": secondary_data}

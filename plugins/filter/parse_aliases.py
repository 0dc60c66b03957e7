# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import AliasInputError, parse_aliases


def parse_aliases_filter(text, source="aliases"):
    """Jinja2 adapter for parse_aliases."""
    try:
        return parse_aliases(text, source=to_text(source))
    except AliasInputError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise AnsibleFilterError(f"smartmx.exim.parse_aliases: {exc}{where}") from exc


class FilterModule:
    """smartmx.exim.parse_aliases."""

    def filters(self):
        return {"parse_aliases": parse_aliases_filter}

# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.module_utils._mx_probe import DAEMON_FLAGS


def exim_daemons(lines):
    """The exim daemons among ``ps -o pid=,ppid=,args=`` lines.

    They are the ``-bd``/``-bdf`` processes whose parent is not one.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    procs = {}
    for line in lines:
        fields = str(line).split(None, 2)
        if len(fields) < 3:
            continue
        try:
            pid, ppid = int(fields[0]), int(fields[1])
        except ValueError as exc:
            raise AnsibleFilterError(f"smartmx.exim.exim_daemons: not a ps line: {line!r}") from exc
        if DAEMON_FLAGS.intersection(fields[2].split()):
            procs[pid] = {"pid": pid, "ppid": ppid, "args": fields[2]}
    return [p for pid, p in sorted(procs.items()) if p["ppid"] not in procs]


class FilterModule:
    """smartmx.exim.exim_daemons."""

    def filters(self):
        return {"exim_daemons": exim_daemons}

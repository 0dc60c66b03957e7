# SPDX-License-Identifier: GPL-3.0-or-later
"""smartmx.exim.exim_daemons on ps output of Debian 12's and Debian 13's exim4."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.filter.exim_daemons import exim_daemons


def test_the_init_script_daemon_and_its_children():
    # Debian 12: /etc/init.d/exim4 starts exim4 -bd -q30m; a connection's child keeps the arguments.
    ps = " 812       1 /usr/sbin/exim4 -bd -q30m\n 900     812 /usr/sbin/exim4 -bd -q30m\n"
    assert [d["pid"] for d in exim_daemons(ps)] == [812]


def test_the_systemd_unit_daemon_runs_in_the_foreground():
    # Debian 13: exim4.service runs exim4 -bdf (the unit is Type=exec).
    lines = ["2084       1 /usr/sbin/exim4 -bdf -q1m", "2090    2084 /usr/sbin/exim4 -bdf -q1m"]
    assert exim_daemons(lines) == [{"pid": 2084, "ppid": 1, "args": "/usr/sbin/exim4 -bdf -q1m"}]


def test_two_daemons_and_none():
    ps = ["10 1 /usr/sbin/exim4 -bd -q30m", "20 1 /usr/sbin/exim4 -bdf -q30m", "30 1 /usr/sbin/exim4 -q30m"]
    assert [d["pid"] for d in exim_daemons(ps)] == [10, 20]
    assert exim_daemons(["30 1 /usr/sbin/exim4 -Mc 1abcde-000000-AB", "31 1 /usr/sbin/exim4 -bt a@b"]) == []


def test_a_line_that_is_not_ps_output():
    with pytest.raises(AnsibleFilterError, match="not a ps line"):
        exim_daemons(["pid ppid /usr/sbin/exim4 -bd"])

# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-session rules shared by every test directory.

A skipped test proves nothing, so a run with skips fails. No test here skips
for want of Docker either: the differential tests fail without it.
pytest itself already fails a run that collected no tests (exit code 5).
"""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session, exitstatus):
    """Turn a green run that skipped tests into a failed one."""
    if exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"{skipped} test(s) skipped: a skip is not a pass",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

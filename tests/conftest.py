# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-session rules shared by every test directory.

A skipped test proves nothing, so a run with skips fails unless
SMARTMX_ALLOW_SKIPS=1 is set (for a quick local run without Docker, say).
pytest itself already fails a run that collected no tests (exit code 5).
"""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session, exitstatus):
    """Turn a green run that skipped tests into a failed one."""
    if exitstatus != pytest.ExitCode.OK or os.environ.get("SMARTMX_ALLOW_SKIPS") == "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"{skipped} test(s) skipped: a skip is not a pass (SMARTMX_ALLOW_SKIPS=1 to allow)",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

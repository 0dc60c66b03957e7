# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's test-session rules (a skipped test fails the run) for this scenario too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests import conftest as _collection_rules

pytest_sessionfinish = _collection_rules.pytest_sessionfinish

# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the harness and the collection (through .cache/collections) importable."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for path in (HERE, REPO / ".cache" / "collections"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

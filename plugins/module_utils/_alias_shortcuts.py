# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""One switch for every fast path of the alias model.

Private to smartmx.exim.  The parser and the router take short paths for the
shapes most aliases have (FAST_LINE, ``_ONE``, ``_fast_list``, ``_QUOTED_PFR``,
``_SIMPLE``; the lanes of plain off-site and pfr aliases and of lists of
users and off-site addresses, the off-site results of a level, ``_pfr_only``,
the one-step routes, the resolver's inline off-site children, the lower-case
addresses of ``info()``, the RCPT answers shared by all domains).  Each of
them gives what the general path gives; the tests prove it by running with
``SHORTCUTS.on`` False (``shortcuts(False)``), which every one of them reads.
"""

from __future__ import absolute_import, division, print_function

from contextlib import contextmanager


class _Switch:
    __slots__ = ("on",)

    def __init__(self):
        self.on = True


SHORTCUTS = _Switch()


@contextmanager
def shortcuts(on):
    """Run the body with the fast paths on or off, then restore the switch."""
    before = SHORTCUTS.on
    SHORTCUTS.on = bool(on)
    try:
        yield
    finally:
        SHORTCUTS.on = before

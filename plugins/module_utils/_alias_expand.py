# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""One level of redirection: an alias's own list with its :include: files.

Private to smartmx.exim.  This is what exim's redirect router hands to
add_generated() (src/routers/redirect.c): the generated children in order,
or the exceptional outcome (:fail:, :defer:, :blackhole:, error, decline).
"""

from __future__ import absolute_import, division, print_function

import posixpath

from ._alias_parse import parse_list

PFR = ("pipe", "file", "directory")
MAX_INCLUDE_DEPTH = 50


class Level:
    """The outcome of one redirection."""

    __slots__ = ("children", "include_pfr", "include_problems", "message", "offsite", "outcome", "pfr")

    def __init__(self):
        self.outcome = "ok"  # ok, decline, fail, defer, blackhole
        self.message = ""
        self.children = []  # (kind, value, item) kind: address or a PFR kind
        self.pfr = False
        # tuples, not lists: most levels have none, and () is shared
        self.include_pfr = ()  # (include path, item)
        self.include_problems = ()  # (code, include path, item, file holding the item or None)
        self.offsite = None  # set by the resolver: the addresses, when all children are plain off-site


class IncludeCache:
    """Parse each :include: text once."""

    def __init__(self, includes, directory=None):
        self.texts = includes or {}
        self.parsed = {}
        self.directory = directory

    def key(self, path):
        """The includes key for a path as the file system resolves it ('.', '..', '//')."""
        if path in self.texts:
            return path
        if path.endswith("/"):
            return None
        norm = posixpath.normpath(path)
        return norm if norm in self.texts else None

    def open_error(self, path):
        """strerror() of fopen() for a path that is not an include file we have."""
        parts = posixpath.normpath(path).split("/")
        for end in range(2, len(parts) + (1 if path.endswith("/") else 0)):
            if "/".join(parts[:end]) in self.texts:
                return "Not a directory"  # a file used as a directory
        return "No such file or directory"

    def get(self, path):
        path = self.key(path)
        if path is None:
            return None
        got = self.parsed.get(path)
        if got is None:
            got = parse_list(self.texts[path])
            self.parsed[path] = got
        return got


def _walk(parsed, domain, cache, level, chain, origin):
    """Add the children of one list; return (stop, message) or None.

    ``chain`` is the stack of include paths being read (loop guard);
    ``origin`` is the include path this list came from (None: alias data).
    """
    children = level.children
    suffix = "@" + domain
    for item in parsed.items:
        kind = item["type"]
        if kind == "address":
            children.append(("address", item["value"], item, origin))
        elif kind == "local":
            children.append(("address", item["value"] + suffix, item, origin))
        elif kind in PFR:
            level.children.append((kind, item["value"], item, origin))
            level.pfr = True
            if origin is not None:
                level.include_pfr += ((origin, item),)
        elif kind == "include":
            stop = _include(item, domain, cache, level, chain)
            if stop is not None:
                return stop
    if parsed.stop == "error":
        return "error", "error in redirect data: " + parsed.message
    if parsed.stop == "filter":
        return "error", "error in filter data: " + parsed.message
    if parsed.stop is not None:
        return parsed.stop, parsed.message
    return None


def _include(item, domain, cache, level, chain):
    path = item["value"]
    directory = cache.directory
    if directory:
        # parse.c: with include_directory the path must lie below it, and every
        # component is opened with O_NOFOLLOW; a missing one is an FF_ERROR.
        base = directory.rstrip("/")
        if not (path.startswith(base) and path[len(base) : len(base) + 1] == "/"):
            level.include_problems += (("include-error", path, item, chain[-1] if chain else None),)
            return "error", f"error in redirect data: included file {path} is not in directory {directory}"
        # The openat() walk mis-steps on an empty component ('//'): once it has
        # opened the file it tries the next component inside it and fails.
        if cache.key(path) is None or "//" in path[len(base) :].rstrip("/"):
            level.include_problems += (("include-missing", path, item, chain[-1] if chain else None),)
            return "error", (
                f"error in redirect data: failed to open {path} (component of included file); "
                "could be symbolic link"
            )
    sub = cache.get(path)
    if sub is None:
        level.include_problems += (("include-missing", path, item, chain[-1] if chain else None),)
        return "error", (
            f"error in redirect data: failed to open included file {path}: {cache.open_error(path)}"
        )
    if path in chain or len(chain) >= MAX_INCLUDE_DEPTH:
        level.include_problems += (("include-loop", path, item, chain[-1] if chain else None),)
        return "error", f"error in redirect data: :include: loop or nesting too deep at {path}"
    mark = len(level.children)
    chain.append(path)
    try:
        stop = _walk(sub, domain, cache, level, chain, path)
    finally:
        chain.pop()
    if stop is not None:
        del level.children[mark:]
        return stop
    return None


def single_level(item, domain):
    """one_level() of a list that is exactly one address, local part, pipe, file or directory.

    ``item`` is the plain-data item itself (the secondary's fast lane stores it
    in place of a parsed list); the result equals one_level() of that list.
    """
    level = Level()
    kind = item["type"]
    if kind == "local":
        level.children.append(("address", item["value"] + "@" + domain, item, None))
    else:
        level.children.append(("address" if kind == "address" else kind, item["value"], item, None))
        level.pfr = kind in PFR
    return level


def one_level(parsed, domain, cache):
    """Expand one alias list (already parsed) for an address in ``domain``."""
    level = Level()
    stop = _walk(parsed, domain, cache, level, [], None)
    if stop is not None:
        kind, message = stop
        # an error (syntax, include) defers the alias like :defer: does
        level.outcome = "defer" if kind == "error" else kind
        level.message = message
        # Before :fail: or :defer: the generated children include any pfr item
        # (redirect.c gets them from rda_interpret()): ``pfr`` stays set, so the
        # secondary punts the address whole.  :defer: drops the children.
        level.pfr = kind in ("fail", "defer") and any(c[0] in PFR for c in level.children)
        if kind != "fail":
            level.children = []
    elif not level.children:
        level.outcome = "decline"
    return level

# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""The pure part of smartmx.exim.alias_sync: a generation's files, manifest and checks.

Private to smartmx.exim.  Shared by the module (on the secondary) and its action
plugin (on the controller), so both compute the same manifest, generation id,
counts, errors and refusals from the same pushed text.  No file system access.

Relative paths of a generation: ``aliases``, ``include/<abs path without the
leading slash>`` for each include file, and the names of ``files`` (``rcpt``,
``punt``).
"""

from __future__ import absolute_import, division, print_function

import hashlib
import posixpath
import re
import time

from ._alias_relocate import alias_sites, list_sites

FORMAT = 1
ALIASES = "aliases"
INCLUDE_DIR = "include"
MANIFEST = "MANIFEST.json"
RESERVED = frozenset((ALIASES, INCLUDE_DIR, MANIFEST))
ID_RE = re.compile(r"\A[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}\Z")
# base_dir and include paths go into alias data unquoted: keep them plain.
SAFE_PATH = re.compile(r"\A/[A-Za-z0-9._+@/-]*\Z")
FILE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# parse.c refuses an :include: file name longer than this.
MAX_INCLUDE_PATH = 255
MAX_ERRORS_KEPT = 1000

# Refusal reasons (docs/alias_sync.md has what to do about each).
NUL = "nul-byte"
UNDECODABLE = "undecodable"
SHRINK = "shrink"
OUTSIDE = "include-outside"
TOO_LONG = "include-too-long"
VALIDATE = "validate-failed"
BAD_INPUT = "bad-input"


class Refusal(Exception):
    """A generation that cannot be right: it is not activated."""

    def __init__(self, reason, message, file=None, line=None):
        Exception.__init__(self, message)
        self.reason = reason
        self.file = file
        self.line = line

    def result(self):
        """The keys a refused run returns."""
        return {"refused": True, "reason": self.reason, "file": self.file, "line": self.line}


def include_relpath(path):
    """Relative path of an include file inside a generation."""
    return INCLUDE_DIR + "/" + path.lstrip("/")


def _plain_path(path, what):
    if not isinstance(path, str) or not path.startswith("/"):
        raise Refusal(BAD_INPUT, f"{what} {path!r} is not an absolute path")
    if posixpath.normpath(path) != path or path.startswith("//"):
        raise Refusal(BAD_INPUT, f"{what} {path!r} is not in normal form (no '.', '..', '//', final '/')")


def gather(aliases, includes, files, alias_path="aliases"):
    """The pushed texts of one generation: ``{relpath: (text, display name)}``."""
    texts = {ALIASES: (aliases, alias_path)}
    for path in sorted(includes or {}):
        _plain_path(path, "include file")
        texts[include_relpath(path)] = (includes[path], path)
    for name in sorted(files or {}):
        if not FILE_NAME.match(name) or name in RESERVED:
            raise Refusal(BAD_INPUT, f"files: {name!r} is not a plain file name or is reserved")
        texts[name] = (files[name], name)
    for text, shown in texts.values():
        if not isinstance(text, str):
            raise Refusal(BAD_INPUT, f"{shown}: the content must be a string, not {type(text).__name__}")
    return texts


def check_text(text, shown):
    """Refuse NUL and undecodable bytes; return the UTF-8 bytes of the text."""
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise Refusal(NUL, f"{shown}: line {line}: NUL byte", shown, line)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # lone surrogates: bytes that were not UTF-8 on the primary (surrogateescape)
        line = text.count("\n", 0, exc.start) + 1
        raise Refusal(UNDECODABLE, f"{shown}: line {line}: bytes that are not UTF-8", shown, line) from exc
    bad = text.find("\ufffd")
    if bad >= 0:
        line = text.count("\n", 0, bad) + 1
        raise Refusal(
            UNDECODABLE,
            f"{shown}: line {line}: U+FFFD, the mark of bytes that were not UTF-8 when the file was read",
            shown,
            line,
        )
    return data


def digest(data):
    """sha256 hex of bytes."""
    return hashlib.sha256(data).hexdigest()


def manifest_files(blobs):
    """``{relpath: {"sha256": .., "size": ..}}`` of ``{relpath: bytes}``."""
    return {rel: {"sha256": digest(data), "size": len(data)} for rel, data in blobs.items()}


def files_digest(files):
    """sha256 over the sorted manifest files: one ``<sha256>  <relpath>`` line each (sha256sum style)."""
    lines = "".join(f"{files[rel]['sha256']}  {rel}\n" for rel in sorted(files))
    return digest(lines.encode("utf-8"))


def generation_id(files, now=None):
    """``<UTC yyyymmddTHHMMSSZ>-<first 12 hex of files_digest>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{files_digest(files)[:12]}"


def same_files(a, b):
    """Whether two manifests' files hold the same contents."""
    if a is None or b is None or set(a) != set(b):
        return False
    return all(a[rel].get("sha256") == b[rel].get("sha256") for rel in a)


def changed_files(new, old):
    """Relative paths added, removed or changed from ``old`` to ``new`` (sorted)."""
    old = old or {}
    names = set(new) | set(old)
    return sorted(r for r in names if (new.get(r) or {}).get("sha256") != (old.get(r) or {}).get("sha256"))


def inside(path, dirs):
    """Whether the normalised absolute path lies below one of dirs."""
    if ".." in path.split("/"):
        return False
    norm = posixpath.normpath(path)
    return any(norm.startswith(d.rstrip("/") + "/") for d in dirs)


def _entry_errors(parsed, shown):
    return [
        {"file": shown, "line": e["line"], "local_part": e.get("local_part"), "message": e["message"]}
        for e in parsed["errors"]
    ]


def _list_errors(text, shown):
    from ._alias_parse import parse_list

    parsed = parse_list(text)
    if parsed.stop != "error":
        return []
    return [{"file": shown, "line": text.count("\n", 0, parsed.stop_offset) + 1, "message": parsed.message}]


def plan(texts, allowed_dirs, max_include_prefix=0):
    """Counts, entry-level errors, include sites and the include refusals of one generation.

    ``texts`` is ``gather()``'s result.  Returns ``{"counts", "errors",
    "relocations": {relpath: [offsets]}, "references": [{"file", "line", "path"}]}``;
    raises Refusal for an include path outside ``allowed_dirs`` (every pushed
    include file and every include item read), or one that relocation would
    make longer than exim allows (``max_include_prefix`` is the prefix length).
    """
    from ._aliases import parse_aliases  # the model: only where a plan is made

    aliases, shown = texts[ALIASES]
    parsed = parse_aliases(aliases, source=shown)
    errors = _entry_errors(parsed, shown)
    entries = len(parsed["entries"])
    sites = {ALIASES: alias_sites(aliases, parsed)}
    del parsed
    includes = {rel: v for rel, v in texts.items() if rel.startswith(INCLUDE_DIR + "/")}
    for rel, (text, path) in includes.items():
        if not inside(path, allowed_dirs):
            raise Refusal(
                OUTSIDE, f"include file {path} is outside allowed_include_dirs {allowed_dirs}", path
            )
        sites[rel] = list_sites(text)
        errors.extend(_list_errors(text, path))
    pushed = {path for _text, path in includes.values()}
    references = []
    for rel, found in sites.items():
        shown = texts[rel][1]
        for _offset, path, line in found:
            references.append({"file": shown, "line": line, "path": path})
            if not inside(path, allowed_dirs):
                raise Refusal(
                    OUTSIDE,
                    f"{shown}: line {line}: :include:{path} is outside allowed_include_dirs {allowed_dirs}",
                    shown,
                    line,
                )
            if len(path) + max_include_prefix > MAX_INCLUDE_PATH:
                raise Refusal(
                    TOO_LONG,
                    f"{shown}: line {line}: :include:{path} would be longer than {MAX_INCLUDE_PATH} "
                    "characters once relocated into the generation (choose a shorter base_dir)",
                    shown,
                    line,
                )
            if posixpath.normpath(path) not in pushed:
                errors.append(
                    {
                        "file": shown,
                        "line": line,
                        "message": f"included file {path} is not in this generation: exim defers the alias",
                    }
                )
    counts = {
        "aliases": entries,
        "includes": len(includes),
        "errors": len(errors),
        "files": len(texts),
        "bytes": sum(len(t) for t, _s in texts.values()),
    }
    for rel, (text, _shown) in texts.items():
        if rel != ALIASES and not rel.startswith(INCLUDE_DIR + "/"):
            counts[rel] = _count_lines(text)
    return {
        "counts": counts,
        "errors": errors,
        "relocations": {rel: [s[0] for s in found] for rel, found in sites.items() if found},
        "references": references,
    }


def _count_lines(text):
    return sum(1 for line in text.split("\n") if line.strip() and not line.startswith("#"))


def shrink_check(new_count, old_count, max_percent, old_id):
    """Refuse an alias file that lost more than max_percent of its entries."""
    if not old_count or new_count >= old_count:
        return
    lost = 100.0 * (old_count - new_count) / old_count
    if lost > max_percent:
        raise Refusal(
            SHRINK,
            f"aliases: {new_count} entries, the current generation {old_id} has {old_count}: "
            f"{lost:.1f} % lost, more than max_shrink_percent ({max_percent})",
            ALIASES,
        )


def line_delta(before, after):
    """``{"head", "tail", "middle"}``: after = before's first head lines + middle + its last tail lines.

    None when the changed region is not small (more than a quarter of the lines).
    """
    a = before.split("\n")
    b = after.split("\n")
    head, tail = _common_ends(a, b)
    middle = b[head : len(b) - tail]
    if len(middle) > max(16, len(b) // 4):
        return None
    return {"head": head, "tail": tail, "middle": middle}


def _common_ends(a, b):
    """Lines a and b share at the start, then at the end (not overlapping)."""
    head = 0
    limit = min(len(a), len(b))
    while head < limit and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < limit - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return head, tail


def diff_text(before, after, max_lines):
    """(before, after, note): the changed region of two texts with 3 lines of context, truncated."""
    a = before.split("\n")
    b = after.split("\n")
    head, tail = _common_ends(a, b)
    start = max(0, head - 3)
    a_mid = a[start : len(a) - max(0, tail - 3)]
    b_mid = b[start : len(b) - max(0, tail - 3)]
    note = ""
    if start or len(a_mid) < len(a) or len(b_mid) < len(b):
        note = f" (lines {start + 1}-{start + max(len(a_mid), len(b_mid))} of {len(a)} -> {len(b)})"
    cut = ""
    if len(a_mid) > max_lines or len(b_mid) > max_lines:
        cut = f" (truncated to {max_lines} lines)"
        a_mid = a_mid[:max_lines]
        b_mid = b_mid[:max_lines]
    return _lines(a_mid), _lines(b_mid), note + cut


def _lines(lines):
    text = "\n".join(lines)
    return text if not text or text.endswith("\n") else text + "\n"

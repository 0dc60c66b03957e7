# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Relocation of ``:include:`` paths into one generation's own directory.

Private to smartmx.exim.  A generation stores the primary's alias file with
every ``:include:`` path it reads prefixed by the generation's real include
directory (``<base_dir>/generations/<id>/include``), and every include file
below that directory under its original absolute path.  Only the prefix is
inserted, right before the ``/`` that starts the path, so the rest of the text
(quotes, escapes, comments, continuation lines) stays byte for byte as it was.

The include items are found with the alias model's own parser
(``read_lsearch`` and ``parse_list``), so they are exactly the items exim
reads: an ``:include:`` inside a comment, inside the message of ``:fail:``,
after a syntax error or in a repeated key (exim reads only the first) is not
an include and is left alone.

Sites are ``(offset, path, line)``: the character offset in the pushed text
where the path starts, the path as written, and its physical line.
"""

from __future__ import absolute_import, division, print_function

INCLUDE = ":include:"
# _alias_address.C_SPACE. The parser is imported where sites are looked for, so a
# module that only relocates (the secondary's side) does not compile the model.
C_SPACE = " \t\n\v\f\r"


class RelocateError(ValueError):
    """The text does not hold the paths the sites say (an internal inconsistency)."""


def _path_start(data, offset):
    """Offset of the path of the ``:include:`` item that starts at ``offset``."""
    i = offset + len(INCLUDE)
    n = len(data)
    while i < n and data[i] in C_SPACE:
        i += 1
    return i


def _check(text, offset, path):
    if text[offset : offset + len(path)] != path or path[:1] != "/":
        raise RelocateError(f"no include path {path!r} at offset {offset}")


def list_sites(text):
    """Include sites of an include file's text (a redirection list, as exim reads it)."""
    if INCLUDE not in text:
        return []
    from ._alias_parse import parse_list

    sites = []
    for item in parse_list(text).items:
        if item["type"] == "include":
            start = _path_start(text, item["offset"])
            _check(text, start, item["value"])
            sites.append((start, item["value"], text.count("\n", 0, start) + 1))
    return sites


def _line_starts(text):
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


def _entry_end(lines, index):
    """Index of the first line after ``index`` that starts a new key (or len(lines))."""
    for k in range(index + 1, len(lines)):
        line = lines[k].rstrip(C_SPACE)
        if line and line[0] not in C_SPACE and line[0] != "#":
            return k
    return len(lines)


def _physical(raw, lines, first, data_offset):
    """(line index, column) of a data offset of a RawEntry read from lines[first:]."""
    spans = raw.spans
    j = len(spans) - 1
    while spans[j][0] > data_offset:
        j -= 1
    span_offset, rel_line = spans[j]
    index = first + rel_line - 1
    line = lines[index].rstrip(C_SPACE)
    if j == 0:
        head = spans[1][0] - 1 if len(spans) > 1 else len(raw.data)  # a blank joins each line
        return index, data_offset + len(line) - head
    indent = len(line) - len(line.lstrip(C_SPACE))
    return index, data_offset - span_offset + indent


def alias_sites(text, parsed):
    """Include sites of an alias file, given ``parse_aliases(text)``.

    Only the entries exim reads (the first of each key) that hold include items
    are read again; their text is cut out of the file and read by the same
    lsearch reader, so offsets and lines are those of the whole file.
    """
    wanted = []
    for entry in parsed["entries"].values():
        for item in entry["items"]:
            if item["type"] == "include":
                wanted.append(entry["line"])
                break
    if not wanted:
        return []
    from ._alias_lsearch import read_lsearch
    from ._alias_parse import parse_list

    lines = text.split("\n")
    starts = _line_starts(text)
    sites = []
    for key_line in sorted(wanted):
        first = key_line - 1
        end = _entry_end(lines, first)
        raw = read_lsearch("\n".join(lines[first:end]))[0]
        for item in parse_list(raw.data).items:
            if item["type"] != "include":
                continue
            index, column = _physical(raw, lines, first, _path_start(raw.data, item["offset"]))
            offset = starts[index] + column
            _check(text, offset, item["value"])
            sites.append((offset, item["value"], index + 1))
    sites.sort()
    return sites


def relocate(text, offsets, prefix):
    """Insert ``prefix`` at every offset (offsets in ``text``)."""
    if not offsets:
        return text
    pieces = []
    last = 0
    for offset in sorted(offsets):
        pieces.append(text[last:offset])
        pieces.append(prefix)
        last = offset
    pieces.append(text[last:])
    return "".join(pieces)


def unrelocate(text, offsets, prefix):
    """The text before ``relocate(original, offsets, prefix)`` (offsets in the original)."""
    if not offsets:
        return text
    pieces = []
    last = 0
    size = len(prefix)
    for k, offset in enumerate(sorted(offsets)):
        at = offset + k * size
        if text[at : at + size] != prefix:
            raise RelocateError(f"no relocation prefix at offset {at}")
        pieces.append(text[last:at])
        last = at + size
    pieces.append(text[last:])
    return "".join(pieces)

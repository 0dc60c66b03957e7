#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: alias_sources
short_description: Read the primary MX's alias file, its include files and the local users
version_added: 0.1.0
author:
  - smartmx.exim maintainers (!UNKNOWN)
description:
  - Reads, on the primary MX, everything the secondaries' routing is computed from, in one
    module run - the alias file, every C(:include:) file it reaches (nested ones too, found
    with the same parser as P(smartmx.exim.parse_aliases#filter)), and the local users with
    a C(~/.procmailrc) or C(~/.forward) flag.
  - Changes nothing. The texts are returned as read; refusing a generation (NUL bytes, a
    truncated file) is the job of M(smartmx.exim.alias_sync).
  - An include file outside O(include_dirs) is not read (its content never leaves the
    primary); it is listed in RV(outside) so the push can refuse it with file and line.
  - Bytes that are not UTF-8 are listed in RV(undecodable) with file and line; the text is
    then returned with U+FFFD in their place, so it must not be pushed.
  - A missing or unreadable include file is listed in RV(missing); exim defers the aliases
    that use it, and so does P(smartmx.exim.secondary_routes#filter), which does not find
    it in RV(includes).
options:
  path:
    description: The alias file, for example C(/etc/aliases) (GNU kept it in C(/com/mailer/aliases)).
    type: path
    required: true
  include_dirs:
    description:
      - Directories that C(:include:) files may live in (or below). Other include paths are
        not read and are listed in RV(outside).
      - An empty list allows no include file at all.
    type: list
    elements: path
    default: []
  users:
    description:
      - Whether to list the local users (the passwd database, through NSS, as exim's
        C(check_local_user) sees it).
    type: bool
    default: true
  users_exclude:
    description:
      - Accounts that are not local users for mail, as the primary's router excludes them
        (Debian's C(local_user) router has C(local_parts = ! root)).
    type: list
    elements: str
    default: [root]
  max_include_files:
    description: Stop following C(:include:) files after this many (a guard against a runaway tree).
    type: int
    default: 10000
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
  platform:
    platforms: posix
    support: full
    description: Needs the passwd database (C(pwd)) and a POSIX file system.
notes:
  - Run it as root on the primary so every home directory can be looked into; a flag that
    cannot be checked (permission denied) is reported as set, so that user is punted to the
    primary (the safe side), and a warning names the user.
seealso:
  - module: smartmx.exim.alias_sync
  - plugin: smartmx.exim.secondary_routes
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read the alias data of the primary
  smartmx.exim.alias_sources:
    path: /com/mailer/aliases
    include_dirs: [/com/mailer/include]
  register: sources

- name: Compute the routing of the secondaries from it
  ansible.builtin.set_fact:
    routes: >-
      {{ sources.aliases | smartmx.exim.parse_aliases(source=sources.path)
         | smartmx.exim.secondary_routes(domains=['gnu.test'], includes=sources.includes,
                                         users=sources.users) }}
"""

RETURN = r"""
path:
  description: The alias file read.
  type: str
  returned: success
  sample: /com/mailer/aliases
include_dirs:
  description: O(include_dirs) as used, for the push's own check of the include paths.
  type: list
  elements: str
  returned: success
aliases:
  description: Text of the alias file.
  type: str
  returned: success
includes:
  description: Text of every C(:include:) file reached, keyed by the path as the aliases write it.
  type: dict
  returned: success
  sample: {"/com/mailer/include/staff": "adb\nnemo@example.net\n"}
missing:
  description: Include paths reached that could not be read, with the reason.
  type: list
  elements: dict
  returned: success
  sample:
    - {"path": "/com/mailer/include/gone", "file": "/com/mailer/aliases", "line": 12,
       "reason": "No such file or directory"}
outside:
  description: Include paths reached outside O(include_dirs) (not read), with the file and line naming them.
  type: list
  elements: dict
  returned: success
  sample: [{"path": "/etc/shadow", "file": "/com/mailer/aliases", "line": 3}]
undecodable:
  description: Files holding bytes that are not UTF-8, with the line of the first one.
  type: list
  elements: dict
  returned: success
  sample: [{"path": "/com/mailer/aliases", "line": 40}]
binary:
  description: Files holding a NUL byte, with its line.
  type: list
  elements: dict
  returned: success
  sample: [{"path": "/com/mailer/aliases", "line": 7}]
refusals:
  description:
    - Why this data must not be pushed, one line each with file and line (from RV(undecodable),
      RV(binary) and RV(outside)); empty when it may be.
  type: list
  elements: str
  returned: success
  sample:
    - "/com/mailer/aliases line 3: :include:/etc/shadow is outside the allowed directories (/com/mailer)"
users:
  description: 'Local users, as C({name: {procmail: bool, forward: bool}}), names lower-cased.'
  type: dict
  returned: success
  sample: {"adb": {"procmail": false, "forward": true}}
serial:
  description: C(sha256:) and the first 16 hex digits of a hash over the alias file and the include files.
  type: str
  returned: success
  sample: "sha256:5f0c2a9d8e7b6a41"
mtime:
  description: Modification time of the newest file read (epoch seconds).
  type: float
  returned: success
"""

import errno  # noqa: E402 (imports follow the documentation blocks)
import hashlib  # noqa: E402
import os  # noqa: E402
import posixpath  # noqa: E402
import pwd  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.smartmx.exim.plugins.module_utils._alias_parse import parse_list  # noqa: E402
from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases  # noqa: E402


def _read(path):
    """Bytes of path, decoded; (text, first bad line or None, mtime)."""
    with open(path, "rb") as handle:
        data = handle.read()
        mtime = os.fstat(handle.fileno()).st_mtime
    try:
        return data.decode("utf-8"), None, mtime
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", "replace"), data[: exc.start].count(b"\n") + 1, mtime


def _inside(path, dirs):
    norm = posixpath.normpath(path)
    for base in dirs:
        base = posixpath.normpath(base)
        if norm.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _include_items(text):
    """(path, line) of the :include: items of an include file, in order."""
    if ":include:" not in text:
        return []
    out = []
    for item in parse_list(text).items:
        if item["type"] == "include":
            out.append((item["value"], text.count("\n", 0, item.get("offset", 0)) + 1))
    return out


def _alias_includes(text, source):
    """(path, line) of the :include: items of the alias file, in file order."""
    if ":include:" not in text or "\0" in text:
        return []
    parsed = parse_aliases(text, source=source)
    out = []
    for entry in parsed["entries"].values():
        for item in entry["items"]:
            if item["type"] == "include":
                out.append((item["value"], item.get("line", entry["line"])))
    return out


class Sources:
    """The alias file and the include files it reaches."""

    def __init__(self, path, include_dirs, limit):
        self.path = path
        self.include_dirs = include_dirs
        self.limit = limit
        self.includes = {}
        self.missing = []
        self.outside = []
        self.undecodable = []
        self.binary = []
        self.mtime = 0.0
        self.digest = hashlib.sha256()

    def _note(self, path, text, bad_line, mtime):
        if bad_line is not None:
            self.undecodable.append({"path": path, "line": bad_line})
        nul = text.find("\0")
        if nul >= 0:
            self.binary.append({"path": path, "line": text.count("\n", 0, nul) + 1})
        self.mtime = max(self.mtime, mtime)
        self.digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        self.digest.update(text.encode("utf-8", "surrogateescape") + b"\0")

    def _missing(self, path, where, line, reason):
        self.missing.append({"path": path, "file": where, "line": line, "reason": reason})

    def refusals(self):
        """Why these sources must not be pushed, one line each (empty: they may be)."""
        out = [f"{i['path']} line {i['line']}: bytes that are not UTF-8" for i in self.undecodable]
        out.extend(f"{i['path']} line {i['line']}: NUL byte (not alias data)" for i in self.binary)
        dirs = ", ".join(self.include_dirs) or "no directory (include_dirs is empty)"
        out.extend(
            f"{i['file']} line {i['line']}: :include:{i['path']} is outside the allowed directories ({dirs})"
            for i in self.outside
        )
        return out

    def read(self):
        text, bad_line, mtime = _read(self.path)
        self._note(self.path, text, bad_line, mtime)
        todo = [(inc, self.path, line) for inc, line in _alias_includes(text, self.path)]
        seen = set()
        while todo:
            inc, where, line = todo.pop(0)
            if inc in seen:
                continue
            seen.add(inc)
            if not _inside(inc, self.include_dirs):
                self.outside.append({"path": inc, "file": where, "line": line})
                continue
            if len(self.includes) >= self.limit:
                self._missing(inc, where, line, "max_include_files reached")
                continue
            try:
                inc_text, bad_line, mtime = _read(inc)
            except OSError as exc:
                self._missing(inc, where, line, os.strerror(exc.errno or 0))
                continue
            self.includes[inc] = inc_text
            self._note(inc, inc_text, bad_line, mtime)
            if "\0" not in inc_text:
                todo.extend((sub, inc, sub_line) for sub, sub_line in _include_items(inc_text))
        return text


def _flag(home, name, warnings, user):
    try:
        os.lstat(os.path.join(home, name))
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        reason = os.strerror(exc.errno)
        warnings.append(f"cannot check ~{user}/{name} ({reason}): {user} is punted to the primary")
        return True


def local_users(exclude, warnings):
    """Every passwd account but the excluded ones, with its .procmailrc / .forward flags."""
    excluded = {name.lower() for name in exclude}
    users = {}
    for entry in pwd.getpwall():
        name = entry.pw_name.lower()
        if name in excluded or name in users:
            continue
        users[name] = {
            "procmail": _flag(entry.pw_dir, ".procmailrc", warnings, name),
            "forward": _flag(entry.pw_dir, ".forward", warnings, name),
        }
    return users


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "include_dirs": {"type": "list", "elements": "path", "default": []},
            "users": {"type": "bool", "default": True},
            "users_exclude": {"type": "list", "elements": "str", "default": ["root"]},
            "max_include_files": {"type": "int", "default": 10000},
        },
        supports_check_mode=True,
    )
    params = module.params
    sources = Sources(params["path"], params["include_dirs"], params["max_include_files"])
    try:
        aliases = sources.read()
    except OSError as exc:
        module.fail_json(msg=f"cannot read the alias file {params['path']}: {os.strerror(exc.errno or 0)}")
    warnings = []
    users = local_users(params["users_exclude"], warnings) if params["users"] else {}
    for warning in warnings:
        module.warn(warning)
    module.exit_json(
        changed=False,
        path=params["path"],
        include_dirs=params["include_dirs"],
        aliases=aliases,
        includes=sources.includes,
        missing=sources.missing,
        outside=sources.outside,
        undecodable=sources.undecodable,
        binary=sources.binary,
        refusals=sources.refusals(),
        users=users,
        serial="sha256:" + sources.digest.hexdigest()[:16],
        mtime=sources.mtime,
    )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: alias_sync
short_description: Push the primary's alias data to a secondary MX as an atomic, validated generation
version_added: 0.1.0
description:
  - Writes one I(generation) of alias data below O(base_dir) on a secondary mail exchanger, the
    directory the secondary's exim reads through the C(current) symbolic link, and switches
    C(current) to it atomically (C(rename) of a new symbolic link) once it has been written,
    synced to disk and validated. Old generations are pruned, the current one never.
  - A generation holds the primary's alias file (C(aliases)), every C(:include:) file it reaches
    (below C(include/), under its original absolute path), the files of O(files) (the C(rcpt) and
    C(punt) lists of P(smartmx.exim.secondary_lists#filter)) and C(MANIFEST.json) with the sha256 of
    every file as pushed. Every C(:include:) path in the stored alias and include files is rewritten
    to that generation's own real directory, so exim never reads a mix of two generations.
  - When the pushed data equals the current generation's (same sha256 of every file), nothing is
    rewritten and the result is C(changed=false); only the C(heartbeat) file is refreshed. That is
    bookkeeping, not a change, so the secondary can tell that pushes still arrive.
  - Every run first reads the current generation's files back and compares them with its manifest.
    A file changed, missing or added on disk after the push makes the run write a new generation
    (C(changed=true), the files in RV(repaired)), even when the pushed data is the same; a damaged
    file is sent again, never hard-linked into the new generation.
  - A generation that cannot be right is refused and the current one keeps serving. The reasons are
    C(nul-byte), C(undecodable), C(shrink), C(include-outside), C(include-too-long),
    C(validate-failed) and C(bad-input); the result names the file and line where there is one.
    Entry-level syntax errors are not refused (exim defers just that alias), they are returned in
    RV(errors).
  - A run holds an C(flock) lock on C(<base_dir>/.lock); a second run waits for it up to
    O(lock_timeout) seconds, then fails. A run killed at any moment leaves C(current) intact; the
    next run removes the C(.incoming-*) leftovers.
  - The action plugin of the same name computes the manifest on the controller and first asks the
    secondary whether its current generation already holds the same data; only the contents of
    changed files are then sent, and unchanged files are hard-linked from the current generation.
  - See C(docs/alias_sync.md) in the collection for the layout and what to do about each refusal.
author:
  - smartmx.exim maintainers (!UNKNOWN)
options:
  base_dir:
    description:
      - The directory holding C(current), C(generations/), C(heartbeat) and C(.lock).
      - Created when it does not exist. Its path is written into the alias data (relocated
        C(:include:) paths), so it may contain only letters, digits and C(._+@/-).
    type: path
    default: /var/lib/smartmx/aliases
  alias_path:
    description:
      - The path of the alias file on the primary; recorded in the manifest and used in messages.
    type: str
    default: aliases
  aliases:
    description:
      - The content of the primary's alias file, as text.
    type: str
    required: true
  includes:
    description:
      - Every C(:include:) file the alias file reaches, nested ones included, as a mapping of the
        absolute path on the primary to its content.
      - An include item whose file is not given is reported in RV(errors) (exim defers that alias,
        on the secondary as on the primary).
    type: dict
    default: {}
  allowed_include_dirs:
    description:
      - Directories every include file and every C(:include:) item must lie below.
      - An empty list refuses every include.
    type: list
    elements: path
    default: []
  files:
    description:
      - Further files of the generation, a mapping of a plain file name to its content; normally
        C(rcpt) and C(punt) from P(smartmx.exim.secondary_lists#filter).
      - The names C(aliases), C(include) and C(MANIFEST.json) are reserved.
    type: dict
    default: {}
  source:
    description:
      - Where the data comes from, recorded in the manifest (for example C(host) and C(serial)).
    type: dict
    default: {}
  keep:
    description:
      - How many generations to keep, the current one included. The current one is never removed.
    type: int
    default: 5
  max_shrink_percent:
    description:
      - Refuse an alias file that has lost more than this share of its entries since the current
        generation (a truncated copy). V(100) turns the check off for one run.
    type: float
    default: 50
  validate:
    description:
      - A command run on the new generation before it is activated; C(%s) is replaced by the
        generation's directory (C(<base_dir>/generations/<id>)). A non-zero exit refuses the
        generation. The command is not run through a shell.
      - Not run in check mode.
    type: str
  owner:
    description:
      - Owner of the files and directories written. Default the user the module runs as.
    type: str
  group:
    description:
      - Group of the files and directories written, normally the group exim runs as
        (C(Debian-exim) on Debian). Default the user's primary group.
    type: str
  mode:
    description:
      - Permissions of the files written, as an octal string. Directories get the same bits plus
        the search bit wherever the read bit is set.
      - Must let the group read and must not let others write.
    type: str
    default: "0640"
  lock_timeout:
    description:
      - Seconds to wait for another run's lock before failing.
    type: float
    default: 60
  transfer:
    description:
      - Internal, set by the action plugin; a task that sets it fails.
      - The manifest of the whole generation, the files whose content this call carries, the
        plan made on the controller (counts, errors, relocations), and whether the call only asks
        if the secondary already holds the data.
    type: dict
  diff_max_lines:
    description:
      - In diff mode, the most lines shown before and after for each changed file; the changed
        region of a file (with three lines of context) is shown, cut to this many lines.
    type: int
    default: 200
attributes:
  check_mode:
    support: full
    description: >-
      Predicts C(changed), the refusals except C(validate-failed), and the new generation;
      writes nothing. An O(owner) or O(group) that does not exist yet (a new secondary, before
      the run that creates the sync account) is a warning in check mode, not a failure.
  diff_mode:
    support: full
    description: >-
      Before and after of each changed file, the changed region only, truncated to
      O(diff_max_lines).
  platform:
    platforms: posix
    support: full
    description: Needs C(flock), hard links and C(rename) of symbolic links.
notes:
  - The heartbeat is rewritten on every run that is not refused and not in check mode, changed or not.
  - The action plugin remembers, on the controller, the manifest it last pushed to each host and
    O(base_dir) (C(~/.ansible/cache/smartmx.exim.alias_sync/)); when the data differs from it, the
    changed files go in the first call. It is only a hint, every file is checked on the secondary.
  - Use the module through its action plugin (the normal case, as a task). Run on its own, for
    instance by C(ansible -m), it needs every content in its arguments and parses the alias file on
    the secondary.
"""

EXAMPLES = r"""
- name: Push the primary's alias data to the secondaries
  smartmx.exim.alias_sync:
    base_dir: /var/lib/smartmx/aliases
    alias_path: /com/mailer/aliases
    aliases: "{{ alias_text }}"
    includes: "{{ include_texts }}"
    allowed_include_dirs:
      - /com/mailer/include
    files: "{{ routes | smartmx.exim.secondary_lists }}"
    source:
      host: mx1.gnu.test
      serial: "{{ alias_serial }}"
    owner: smartmx-sync
    group: Debian-exim
    mode: "0640"
  register: pushed

- name: Accept a deliberately much smaller alias file once
  smartmx.exim.alias_sync:
    aliases: "{{ alias_text }}"
    allowed_include_dirs:
      - /com/mailer/include
    max_shrink_percent: 100

- name: Check the new generation with exim before it goes live
  smartmx.exim.alias_sync:
    aliases: "{{ alias_text }}"
    validate: /usr/local/sbin/smartmx-check-generation %s
"""

RETURN = r"""
generation:
  description: >-
    Id of the current generation after the run (the new one, the unchanged one, or in check
    mode the one a real run would make).
  returned: success
  type: str
  sample: 20261201T204000Z-3f2a9c0d1b7e
previous:
  description: Id of the generation that was current before the run, if any.
  returned: success
  type: str
  sample: 20261201T203500Z-0d9e8a7b6c5f
changed_files:
  description: Relative paths in the generation that were added, changed or removed.
  returned: success
  type: list
  elements: str
  sample: [aliases, rcpt]
repaired:
  description: >-
    Relative paths of the current generation that no longer matched its manifest on disk
    (changed, missing, or not in the manifest at all) and that the run wrote anew.
  returned: success
  type: list
  elements: str
  sample: [aliases]
counts:
  description: >-
    C(aliases) (entries of the alias file), C(includes) (include files), C(errors) (entry-level
    errors), C(files), C(bytes), and the number of lines of each of O(files).
  returned: success
  type: dict
  sample: {aliases: 100000, includes: 200, errors: 0, files: 203, bytes: 5200000, rcpt: 100000, punt: 8000}
errors:
  description: >-
    Entry-level errors: a syntax error in one alias (exim defers that alias) or an include file
    that is not part of the generation; each with C(file), C(line) and C(message).
  returned: success
  type: list
  elements: dict
  sample:
    - file: /com/mailer/aliases
      line: 12
      local_part: bad
      message: 'malformed address: < may not follow a'
manifest_sha256:
  description: The sha256 of the generation's C(MANIFEST.json) file as stored.
  returned: success
  type: str
manifest:
  description: >-
    The generation's C(MANIFEST.json): format, generation, created, source, files (sha256 and
    size of each as pushed), counts, errors and the relocated offsets.
  returned: success
  type: dict
heartbeat:
  description: Path and content of the heartbeat written by this run; C(written) is false in check mode.
  returned: success
  type: dict
  sample: {path: /var/lib/smartmx/aliases/heartbeat, time: 1796157600, written: true}
sent_files:
  description: Through the action plugin, the relative paths whose content was sent to the secondary.
  returned: when the data changed
  type: list
  elements: str
  sample: [aliases]
sent_changed_lines:
  description: >-
    Through the action plugin, the relative paths sent as their changed lines only (files of
    64 KiB or more whose previous text the controller kept); the module rebuilt them from the
    current generation and checked their sha256.
  returned: when the data changed
  type: list
  elements: str
aliases_parsed:
  description: >-
    Through the action plugin, whether the alias file was parsed on the controller in this run
    (false when only the other files changed since the push the controller remembers).
  returned: when the data changed
  type: bool
heartbeat_only:
  description: >-
    Through the action plugin, true when the controller's remembered manifest matched and a
    shell check on the secondary (under the lock) confirmed it, so only the heartbeat was
    rewritten, without running the module.
  returned: when that happened
  type: bool
cleaned:
  description: What the run removed of killed runs' leftovers (C(.incoming-*), unactivated generations).
  returned: success
  type: list
  elements: str
pruned:
  description: Generation ids removed by this run.
  returned: success
  type: list
  elements: str
refused:
  description: True when the generation was refused (the task fails; the current generation keeps serving).
  returned: failure
  type: bool
reason:
  description: Why it was refused, one of the reasons in the description.
  returned: when refused
  type: str
  sample: shrink
file:
  description: The file the refusal is about, where there is one.
  returned: when refused
  type: str
line:
  description: The line the refusal is about, where there is one.
  returned: when refused
  type: int
"""

import contextlib  # noqa: E402 (imports follow the documentation blocks)
import errno  # noqa: E402
import fcntl  # noqa: E402
import grp  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen  # noqa: E402
from ansible_collections.smartmx.exim.plugins.module_utils._alias_relocate import (  # noqa: E402
    RelocateError,
    relocate,
    unrelocate,
)
from ansible_collections.smartmx.exim.plugins.module_utils._mx_probe import generation_state  # noqa: E402

INCOMING = ".incoming-"
GENERATIONS = "generations"
CURRENT = "current"
HEARTBEAT = "heartbeat"
LOCK = ".lock"

ARGUMENT_SPEC = dict(
    base_dir=dict(type="path", default="/var/lib/smartmx/aliases"),
    alias_path=dict(type="str", default="aliases"),
    aliases=dict(type="str", required=True),
    includes=dict(type="dict", default={}),
    allowed_include_dirs=dict(type="list", elements="path", default=[]),
    files=dict(type="dict", default={}),
    source=dict(type="dict", default={}),
    keep=dict(type="int", default=5),
    max_shrink_percent=dict(type="float", default=50),
    validate=dict(type="str"),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="str", default="0640"),
    lock_timeout=dict(type="float", default=60),
    diff_max_lines=dict(type="int", default=200),
    # Set by the action plugin only: manifest (the whole generation's files), sent
    # (the relative paths whose content is in this call), plan, probe.
    transfer=dict(type="dict"),
)


class Failure(Exception):
    """A run that fails without a refusal (lock, permissions, arguments)."""


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class Lock:
    """flock(2) on <base_dir>/.lock for the whole run."""

    def __init__(self, path, timeout, create=True, own=None):
        self.fd = None
        if not create and not os.path.exists(path):
            return
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        if own is not None and create:
            # The lock belongs to the owner of the generations, whoever runs: a
            # first sync run as root must not lock the sync account out.
            own(path, self.fd)
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                os.close(self.fd)
                self.fd = None
                raise Failure(
                    f"another alias_sync run holds {path}: gave up after {timeout:g} s (lock_timeout)"
                )
            time.sleep(0.05)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Target:
    """The generation tree below base_dir on this host."""

    def __init__(self, module):
        p = module.params
        self.module = module
        self.base = p["base_dir"].rstrip("/") or "/"
        if not gen.SAFE_PATH.match(self.base) or os.path.normpath(self.base) != self.base:
            raise Failure(f"base_dir {self.base!r}: letters, digits and ._+@/- only, in normal form")
        try:
            self.mode = int(p["mode"], 8)
        except (TypeError, ValueError) as exc:
            raise Failure(f"mode {p['mode']!r} is not an octal string") from exc
        if self.mode & ~0o777 or self.mode & 0o002 or not self.mode & 0o040 or not self.mode & 0o400:
            raise Failure(f"mode {p['mode']}: owner and group must read, others must not write")
        self.dir_mode = self.mode | ((self.mode & 0o444) >> 2) | 0o200
        self.uid = self._id(p["owner"], pwd.getpwnam, "pw_uid")
        self.gid = self._id(p["group"], grp.getgrnam, "gr_gid")
        self.generations = os.path.join(self.base, GENERATIONS)
        self.check = module.check_mode
        self.manifest_sha256 = None  # of the current generation's MANIFEST.json, once read

    def _id(self, name, lookup, field):
        if name is None:
            return -1
        if name.isdigit():
            return int(name)
        try:
            return getattr(lookup(name), field)
        except KeyError as exc:
            if self.module.check_mode:
                # Check mode before the first run: the account comes with it.
                self.module.warn(
                    f"check mode: no user or group {name} yet; the generation would belong to it"
                )
                return -1
            raise Failure(f"no such user or group: {name}") from exc

    def prefix(self, gen_id):
        return f"{self.base}/{GENERATIONS}/{gen_id}/{gen.INCLUDE_DIR}"

    # -- reading ---------------------------------------------------------
    def current(self):
        """(id, manifest) of the current generation, or (None, None)."""
        try:
            target = os.readlink(os.path.join(self.base, CURRENT))
        except FileNotFoundError:
            return None, None
        gen_id = os.path.basename(target.rstrip("/"))
        try:
            with open(os.path.join(self.generations, gen_id, gen.MANIFEST), "rb") as f:
                data = f.read()
            manifest = json.loads(data)
        except (OSError, ValueError):
            return gen_id, None
        self.manifest_sha256 = gen.digest(data)
        return gen_id, manifest

    def pushed_text(self, gen_id, manifest, rel):
        """The text of ``rel`` as pushed (relocation undone), or None if it cannot be trusted."""
        try:
            with open(os.path.join(self.generations, gen_id, rel), "rb") as f:
                data = f.read()
            text = data.decode("utf-8")
            offsets = (manifest.get("relocations") or {}).get(rel)
            if offsets:
                text = unrelocate(text, offsets, self.prefix(gen_id))
                data = text.encode("utf-8")
        except (OSError, UnicodeDecodeError, RelocateError):
            return None
        if gen.digest(data) != manifest["files"][rel]["sha256"]:
            return None
        return text

    # -- writing ---------------------------------------------------------
    def _own(self, path, fd=None):
        if self.uid != -1 or self.gid != -1:
            if fd is not None:
                os.fchown(fd, self.uid, self.gid)
            else:
                os.lchown(path, self.uid, self.gid)

    def same_attributes(self, st):
        """Whether a file already has the mode, owner and group this run writes with."""
        return (
            st.st_mode & 0o7777 == self.mode and self.uid in (-1, st.st_uid) and self.gid in (-1, st.st_gid)
        )

    def mkdir(self, path):
        os.mkdir(path, self.dir_mode)
        os.chmod(path, self.dir_mode)
        self._own(path)

    def ensure_base(self):
        for path in (self.base, self.generations):
            if not os.path.isdir(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self.mkdir(path)

    def write_file(self, path, data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self.mode)
        try:
            os.fchmod(fd, self.mode)
            self._own(path, fd)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def atomic_file(self, name, data):
        fd, tmp = tempfile.mkstemp(prefix=INCOMING, dir=self.base)
        try:
            os.fchmod(fd, self.mode)
            self._own(tmp, fd)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.base, name))

    def cleanup(self, current_id):
        """Remove what killed runs left: .incoming-* and the generation a run was validating."""
        try:
            names = os.listdir(self.base)
        except FileNotFoundError:
            return []
        removed = []
        for name in names:
            if not name.startswith(INCOMING):
                continue
            path = os.path.join(self.base, name)
            try:
                with open(os.path.join(path, "claim"), encoding="ascii") as f:
                    claimed = f.read().strip()
            except (OSError, UnicodeDecodeError):
                claimed = None
            if claimed and gen.ID_RE.match(claimed) and claimed != current_id:
                _remove(os.path.join(self.generations, claimed))
                removed.append(claimed)
            _remove(path)
            removed.append(name)
        return removed

    def heartbeat(self, gen_id, source, changed):
        now = time.time()
        body = {"generation": gen_id, "time": int(now), "changed": changed, "source": source}
        if not self.check:
            self.atomic_file(HEARTBEAT, (json.dumps(body, sort_keys=True) + "\n").encode("ascii"))
        return {"path": os.path.join(self.base, HEARTBEAT), "time": int(now), "written": not self.check}

    def prune(self, keep, current_id):
        try:
            ids = sorted(n for n in os.listdir(self.generations) if gen.ID_RE.match(n))
        except FileNotFoundError:
            return []
        # oldest first: the id's time, then the directory's (ids of one second sort by hash)
        ids.sort(key=lambda n: (n[:16], os.stat(os.path.join(self.generations, n)).st_mtime_ns))
        old = [n for n in ids if n != current_id]
        remove = old[: max(0, len(old) - max(keep, 1) + 1)]
        for name in remove:
            shutil.rmtree(os.path.join(self.generations, name))
        return remove


class Run:
    """One alias_sync run against a Target."""

    def __init__(self, module, target):
        self.module = module
        self.p = module.params
        self.t = target
        self.transfer = module.params["transfer"] or {}
        self.damaged = set()  # files of the current generation that no longer match its manifest

    def received(self, cur_id, cur):
        """Manifest files, and the texts and bytes this call carries (sent whole or as changed lines)."""
        p = self.p
        texts = gen.gather(p["aliases"], p["includes"], p["files"], p["alias_path"])
        if not self.transfer.get("manifest"):
            blobs = {rel: gen.check_text(text, shown) for rel, (text, shown) in texts.items()}
            return gen.manifest_files(blobs), texts, blobs
        files = self.transfer["manifest"]
        sent = set(self.transfer.get("sent") or ())
        texts = {rel: v for rel, v in texts.items() if rel in sent}
        blobs = {}
        for rel, (text, shown) in texts.items():
            data = gen.check_text(text, shown)
            if rel not in files or gen.digest(data) != files[rel]["sha256"]:
                raise Failure(f"{shown}: the content sent does not match the manifest")
            blobs[rel] = data
        for rel, delta in (self.transfer.get("deltas") or {}).items():
            if rel in texts or rel not in files:
                continue
            text = self.patched(rel, delta, cur_id, cur)
            if text is None:
                continue  # the run asks for the whole file
            shown = self.p["alias_path"] if rel == gen.ALIASES else rel
            if rel.startswith(gen.INCLUDE_DIR + "/"):
                shown = rel[len(gen.INCLUDE_DIR) :]
            data = gen.check_text(text, shown)
            if gen.digest(data) == files[rel]["sha256"]:
                texts[rel] = (text, shown)
                blobs[rel] = data
        return files, texts, blobs

    def patched(self, rel, delta, cur_id, cur):
        """A changed file rebuilt from the current generation's and the changed lines sent."""
        if not cur or (cur["files"].get(rel) or {}).get("sha256") != delta.get("base_sha256"):
            return None
        base = self.t.pushed_text(cur_id, cur, rel)
        if base is None:
            return None
        lines = base.split("\n")
        head, tail = delta["head"], delta["tail"]
        if head + tail > len(lines):
            return None
        return "\n".join(lines[:head] + list(delta["middle"]) + lines[len(lines) - tail :])

    def run(self):
        t = self.t
        cur_id, cur = t.current()
        cleaned = [] if t.check else t.cleanup(cur_id)
        repaired = self.check_current(cur_id, cur)
        files, texts, blobs = self.received(cur_id, cur)
        cur_files = cur["files"] if cur else None
        result = {"previous": cur_id, "cleaned": cleaned, "pruned": [], "repaired": repaired}
        if not repaired and gen.same_files(files, cur_files):
            return self.unchanged(cur_id, cur, result)
        old = cur_files or {}
        missing = sorted(
            r
            for r in files
            if r not in texts
            and ((old.get(r) or {}).get("sha256") != files[r]["sha256"] or r in self.damaged)
        )
        if self.transfer.get("probe") or missing:
            result.update(changed=True, need=missing)
            return result
        return self.apply(cur_id, cur, files, texts, blobs, result)

    def check_current(self, cur_id, cur):
        """Files of the current generation changed, missing or added on disk since the push (sorted)."""
        if not cur:
            return []
        state = generation_state(self.t.base)
        if state["current"] != cur_id or state["manifest_sha256"] != self.t.manifest_sha256:
            return []  # current moved under this run's feet: the lock makes that impossible
        self.damaged = set(state["mismatched"]) | set(state["missing"])
        return sorted(self.damaged | set(state["extra"]))

    def unchanged(self, cur_id, cur, result):
        result.update(
            changed=False,
            generation=cur_id,
            changed_files=[],
            counts=cur.get("counts", {}),
            errors=cur.get("errors", []),
            manifest=cur,
            manifest_sha256=self.t.manifest_sha256,
            heartbeat=self.t.heartbeat(cur_id, cur.get("source"), False),
        )
        return result

    def _plan(self, files, texts, cur_id, cur):
        p = self.p
        prefix_len = len(self.t.prefix("x" * 29))
        if self.transfer.get("plan") is not None:
            planned = self.transfer["plan"]
            for ref in planned.get("references", []):
                if not gen.inside(ref["path"], p["allowed_include_dirs"]):
                    message = f"{ref['file']}: line {ref['line']}: :include:{ref['path']} is outside"
                    raise gen.Refusal(
                        gen.OUTSIDE, f"{message} allowed_include_dirs", ref["file"], ref["line"]
                    )
            return planned
        return gen.plan(texts, p["allowed_include_dirs"], prefix_len)

    def texts_for(self, rels, files, texts, cur_id, cur):
        """Texts of rels: sent in this call or, unchanged, rebuilt from the current generation."""
        out = {}
        for rel in rels:
            if rel in texts:
                out[rel] = texts[rel][0]
                continue
            text = self.t.pushed_text(cur_id, cur, rel) if cur else None
            if text is None:
                raise Failure(f"{rel}: not sent and not readable from generation {cur_id}")
            out[rel] = text
        return out

    def apply(self, cur_id, cur, files, texts, blobs, result):
        p = self.p
        t = self.t
        planned = self._plan(files, texts, cur_id, cur)
        if cur:
            gen.shrink_check(
                planned["counts"]["aliases"],
                (cur.get("counts") or {}).get("aliases"),
                p["max_shrink_percent"],
                cur_id,
            )
        cur_files = cur["files"] if cur else {}
        changed = gen.changed_files(files, cur_files)
        gen_id = gen.generation_id(files)
        while os.path.exists(os.path.join(t.generations, gen_id)):
            time.sleep(0.2)
            gen_id = gen.generation_id(files)
        relocations = planned.get("relocations") or {}
        manifest = {
            "format": gen.FORMAT,
            "generation": gen_id,
            "created": int(time.time()),
            "source": dict(p["source"], alias_path=p["alias_path"]),
            "files": files,
            "counts": planned["counts"],
            "errors": planned["errors"][: gen.MAX_ERRORS_KEPT],
            "relocations": relocations,
        }
        result.update(
            changed=True,
            generation=gen_id,
            changed_files=changed,
            counts=planned["counts"],
            errors=planned["errors"],
            manifest=manifest,
        )
        body = (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode("utf-8")
        result["manifest_sha256"] = gen.digest(body)
        if self.module._diff:
            result["diff"] = self.diff(changed, files, texts, cur_id, cur)
        if t.check:
            result["heartbeat"] = t.heartbeat(gen_id, manifest["source"], True)
            return result
        t.ensure_base()
        incoming = tempfile.mkdtemp(prefix=INCOMING, dir=t.base)
        staged = os.path.join(incoming, "generation")
        self.write(staged, gen_id, files, texts, blobs, relocations, cur_id, cur, body)
        with open(os.path.join(incoming, "claim"), "w", encoding="ascii") as f:
            f.write(gen_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        final = os.path.join(t.generations, gen_id)
        os.rename(staged, final)
        _fsync_dir(t.generations)
        self.validate(final, incoming)
        link = os.path.join(incoming, CURRENT)
        os.symlink(f"{GENERATIONS}/{gen_id}", link)
        if t.uid != -1 or t.gid != -1:
            os.lchown(link, t.uid, t.gid)
        os.rename(link, os.path.join(t.base, CURRENT))
        _fsync_dir(t.base)
        result["heartbeat"] = t.heartbeat(gen_id, manifest["source"], True)
        _remove(incoming)
        result["pruned"] = t.prune(p["keep"], gen_id)
        return result

    def write(self, staged, gen_id, files, texts, blobs, relocations, cur_id, cur, body):
        t = self.t
        t.mkdir(staged)
        dirs = [staged]
        cur_files = cur["files"] if cur else {}
        cur_reloc = (cur.get("relocations") or {}) if cur else {}
        prefix = t.prefix(gen_id)
        for rel in sorted(files):
            path = os.path.join(staged, rel)
            parent = os.path.dirname(path)
            if not os.path.isdir(parent):
                rel_parent = os.path.relpath(parent, staged)
                walk = staged
                for part in rel_parent.split("/"):
                    walk = os.path.join(walk, part)
                    if not os.path.isdir(walk):
                        t.mkdir(walk)
                        dirs.append(walk)
            offsets = relocations.get(rel)
            unchanged = (cur_files.get(rel) or {}).get("sha256") == files[rel]["sha256"]
            if unchanged and rel not in self.damaged and not offsets and not cur_reloc.get(rel):
                source = os.path.join(t.generations, cur_id, rel)
                try:
                    if t.same_attributes(os.stat(source)):
                        os.link(source, path)
                        continue
                except OSError:
                    pass
            if offsets:
                text = self.texts_for([rel], files, texts, cur_id, cur)[rel]
                data = relocate(text, offsets, prefix).encode("utf-8")
            elif rel in blobs:
                data = blobs[rel]
            else:
                data = self.texts_for([rel], files, texts, cur_id, cur)[rel].encode("utf-8")
            t.write_file(path, data)
        t.write_file(os.path.join(staged, gen.MANIFEST), body)
        for path in reversed(dirs):
            _fsync_dir(path)

    def validate(self, final, incoming):
        command = self.p["validate"]
        if not command:
            return
        rc, out, err = self.module.run_command(command % final)
        if rc != 0:
            shutil.rmtree(final, ignore_errors=True)
            _remove(incoming)
            tail = (err or out or "").strip()[-2000:]
            raise gen.Refusal(gen.VALIDATE, f"validate command failed (rc={rc}): {tail}")

    def diff(self, changed, files, texts, cur_id, cur):
        limit = max(1, self.p["diff_max_lines"])
        out = []
        for rel in changed:
            before = ""
            if cur and rel in cur["files"]:
                before = self.t.pushed_text(cur_id, cur, rel)
                if before is None:
                    before = "(not readable)\n"
            after = self.texts_for([rel], files, texts, cur_id, cur)[rel] if rel in files else ""
            b, a, note = gen.diff_text(before, after, limit)
            out.append(
                {
                    "before_header": f"{cur_id or '(none)'}/{rel}{note}",
                    "after_header": f"new/{rel}{note}",
                    "before": b,
                    "after": a,
                }
            )
        return out


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    shown = {"module_args": _shown_args(p)}
    if p["validate"] and "%s" not in p["validate"]:
        module.fail_json(msg="validate must contain %s (the new generation's directory)", invocation=shown)
    if p["keep"] < 1:
        module.fail_json(msg="keep must be at least 1", invocation=shown)
    lock = None
    try:
        target = Target(module)
        if not target.check:
            os.makedirs(os.path.dirname(target.base), exist_ok=True)
            if not os.path.isdir(target.base):
                target.mkdir(target.base)
        lock = Lock(
            os.path.join(target.base, LOCK), p["lock_timeout"], create=not target.check, own=target._own
        )
        result = Run(module, target).run()
    except gen.Refusal as exc:
        current = os.path.join(p["base_dir"], CURRENT)
        serving = os.path.basename(os.readlink(current)) if os.path.islink(current) else None
        module.fail_json(
            msg=f"refused ({exc.reason}): {exc}", generation=serving, invocation=shown, **exc.result()
        )
    except Failure as exc:
        module.fail_json(msg=str(exc), invocation=shown)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or p['base_dir']}: {exc.strerror or exc}", invocation=shown)
    finally:
        if lock is not None:
            lock.release()
    module.exit_json(invocation=shown, **result)


def _shown_args(params):
    """The arguments echoed in the result, contents replaced by their size."""
    shown = {k: v for k, v in params.items() if k != "transfer"}
    shown["aliases"] = f"({len(params['aliases'] or '')} characters)"
    for key in ("includes", "files"):
        shown[key] = {name: f"({len(text or '')} characters)" for name, text in (params[key] or {}).items()}
    return shown


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Action plugin of smartmx.exim.alias_sync: send only what the secondary lacks.

On the controller: the pushed texts are checked (NUL, undecodable bytes) and
hashed into the manifest. A first, small call asks the module whether the
secondary's current generation holds the same data (then it only refreshes the
heartbeat). Otherwise the alias file is parsed here (counts, entry-level
errors, include sites and include refusals) and a second call carries that plan
and the contents of the files the secondary does not already have.
"""

from __future__ import absolute_import, division, print_function

import json
import os

from ansible.plugins.action import ActionBase
from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen

MODULE = "smartmx.exim.alias_sync"
DEFAULT_BASE = "/var/lib/smartmx/aliases"
# The manifest last pushed to each host (a hint that saves the probe: the module
# still checks every file against its current generation).
HINT_DIR = os.path.expanduser("~/.ansible/cache/smartmx.exim.alias_sync")
# len("/generations/<id>/include"): the part of the relocation prefix after base_dir.
_PREFIX_TAIL = len("/generations/") + len("yyyymmddTHHMMSSZ-") + 12 + len("/include")


class ActionModule(ActionBase):
    """Probe with the manifest, then send the changed files only."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if "transfer" in args:
            result.update(failed=True, msg="transfer is set by the action plugin, not by a task")
            return result
        includes = args.get("includes") or {}
        files = args.get("files") or {}
        try:
            texts = gen.gather(args.get("aliases"), includes, files, args.get("alias_path") or "aliases")
            blobs = {rel: gen.check_text(text, shown) for rel, (text, shown) in texts.items()}
        except gen.Refusal as exc:
            result.update(failed=True, msg=f"refused ({exc.reason}): {exc}", **exc.result())
            return result
        manifest = gen.manifest_files(blobs)
        del blobs
        base = (args.get("base_dir") or DEFAULT_BASE).rstrip("/")
        hint_path = self._hint_path(task_vars, base)
        hint = _load_hint(hint_path)
        planned = None
        if hint is not None and not gen.same_files(manifest, hint):
            # The secondary probably holds what was pushed last: send what changed since.
            sent = gen.changed_files(manifest, hint)
            sent = [rel for rel in sent if rel in manifest]
        else:
            probe = self._call(args, texts, manifest, (), None, task_vars, probe=True)
            if probe.get("failed") or "need" not in probe:
                self._save_hint(hint_path, manifest, probe)
                result.update(probe)
                return result
            sent = probe["need"]
        try:
            planned = gen.plan(texts, args.get("allowed_include_dirs") or [], len(base) + _PREFIX_TAIL)
        except gen.Refusal as exc:
            result.update(failed=True, msg=f"refused ({exc.reason}): {exc}", **exc.result())
            return result
        applied = self._call(args, texts, manifest, sent, planned, task_vars)
        if not applied.get("failed") and "need" in applied:
            # The secondary's current generation is not the one expected: send what it lacks.
            sent = sorted(set(sent) | set(applied["need"]))
            applied = self._call(args, texts, manifest, sent, planned, task_vars)
            if not applied.get("failed") and "need" in applied:
                sent = sorted(manifest)
                applied = self._call(args, texts, manifest, sent, planned, task_vars)
        applied.pop("need", None)
        applied["sent_files"] = sorted(sent)
        self._save_hint(hint_path, manifest, applied)
        result.update(applied)
        return result

    def _hint_path(self, task_vars, base):
        """Where the controller remembers the manifest last pushed to this host and base_dir."""
        host = (task_vars or {}).get("inventory_hostname", "")
        key = gen.digest(f"{host}\0{base}".encode())[:24]
        return os.path.join(HINT_DIR, f"{key}.json")

    def _save_hint(self, path, manifest, outcome):
        if self._task.check_mode or outcome.get("failed"):
            return
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(manifest, f)
            os.replace(tmp, path)
        except OSError:
            pass  # only a hint: the next run asks the secondary first

    def _call(self, args, texts, manifest, sent, planned, task_vars, probe=False):
        """Run the module with the manifest and the contents of ``sent`` only."""
        sent = set(sent)
        module_args = dict(args)
        module_args["aliases"] = texts[gen.ALIASES][0] if gen.ALIASES in sent else ""
        inc = gen.INCLUDE_DIR + "/"
        module_args["includes"] = {
            path: text for rel, (text, path) in texts.items() if rel in sent and rel.startswith(inc)
        }
        module_args["files"] = {
            name: text
            for rel, (text, name) in texts.items()
            if rel in sent and rel != gen.ALIASES and not rel.startswith(gen.INCLUDE_DIR + "/")
        }
        module_args["transfer"] = {"manifest": manifest, "sent": sorted(sent), "probe": probe}
        if planned is not None:
            module_args["transfer"]["plan"] = planned
        return self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)


def _load_hint(path):
    try:
        with open(path, encoding="utf-8") as f:
            hint = json.load(f)
    except (OSError, ValueError):
        return None
    return hint if isinstance(hint, dict) else None

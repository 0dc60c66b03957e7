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

from ansible.plugins.action import ActionBase
from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen

MODULE = "smartmx.exim.alias_sync"
DEFAULT_BASE = "/var/lib/smartmx/aliases"
# len("/generations/<id>/include"): the part of the relocation prefix after base_dir.
_PREFIX_TAIL = len("/generations/") + len("yyyymmddTHHMMSSZ-") + 12 + len("/include")


class ActionModule(ActionBase):
    """Probe with the manifest, then send the changed files only."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        hidden = sorted(k for k in args if k.startswith("_"))
        if hidden:
            result.update(failed=True, msg=f"unsupported parameters: {', '.join(hidden)}")
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
        probe = self._call(args, texts, manifest, (), None, task_vars, probe=True)
        if probe.get("failed") or "need" not in probe:
            result.update(probe)
            return result
        base = (args.get("base_dir") or DEFAULT_BASE).rstrip("/")
        try:
            planned = gen.plan(texts, args.get("allowed_include_dirs") or [], len(base) + _PREFIX_TAIL)
        except gen.Refusal as exc:
            result.update(
                failed=True,
                msg=f"refused ({exc.reason}): {exc}",
                previous=probe.get("previous"),
                generation=probe.get("previous"),
                **exc.result(),
            )
            return result
        sent = probe["need"]
        applied = self._call(args, texts, manifest, sent, planned, task_vars)
        if not applied.get("failed") and "need" in applied:
            # The current generation moved between the two calls: send everything.
            sent = sorted(manifest)
            applied = self._call(args, texts, manifest, sent, planned, task_vars)
        applied.pop("need", None)
        applied["sent_files"] = sorted(sent)
        result.update(applied)
        return result

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
        module_args.update(_manifest=manifest, _sent=sorted(sent), _probe=probe)
        if planned is not None:
            module_args["_plan"] = planned
        return self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)

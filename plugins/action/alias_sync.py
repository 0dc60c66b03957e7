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
import re
import shlex
import time

from ansible.plugins.action import ActionBase
from ansible_collections.smartmx.exim.plugins.module_utils import _alias_sync as gen

MODULE = "smartmx.exim.alias_sync"
DEFAULT_BASE = "/var/lib/smartmx/aliases"
# The manifest last pushed to each host (a hint that saves the probe: the module
# still checks every file against its current generation).
HINT_DIR = os.path.expanduser("~/.ansible/cache/smartmx.exim.alias_sync")
# len("/generations/<id>/include"): the part of the relocation prefix after base_dir.
# Files at least this big are kept on the controller after a push and, when they
# change, sent as their changed lines.
DELTA_MIN = 64 * 1024
_SHA = re.compile(r"\A[0-9a-f]{64}\Z")
_MODE = re.compile(r"\A0?[0-7]{3}\Z")
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
        if hint is not None and gen.same_files(manifest, hint["files"]) and not self._task.check_mode:
            # Most likely nothing to do but the heartbeat: a shell one-liner checks that.
            quick = self._heartbeat_only(args, hint, base)
            if quick is not None:
                result.update(quick)
                return result
        deltas = {}
        if hint is not None and not gen.same_files(manifest, hint["files"]):
            # The secondary probably holds what was pushed last: send what changed since,
            # big files as their changed lines.
            sent = gen.changed_files(manifest, hint["files"])
            sent = [rel for rel in sent if rel in manifest]
            deltas = self._deltas(hint_path, sent, texts, hint["files"])
            sent = [rel for rel in sent if rel not in deltas]
        else:
            probe = self._call(args, texts, manifest, (), None, task_vars, probe=True)
            if probe.get("failed") or "need" not in probe:
                self._save_hint(hint_path, manifest, probe, texts)
                result.update(probe)
                return result
            sent = probe["need"]
        allowed = args.get("allowed_include_dirs") or []
        plan_key = gen.plan_key(manifest, allowed, len(base) + _PREFIX_TAIL)
        try:
            parsed = not (hint is not None and hint.get("plan") and hint.get("plan_key") == plan_key)
            if parsed:
                planned = gen.plan(texts, allowed, len(base) + _PREFIX_TAIL)
            else:  # only the lists changed: the alias file need not be parsed again
                planned = gen.reuse_plan(hint["plan"], texts)
        except gen.Refusal as exc:
            result.update(failed=True, msg=f"refused ({exc.reason}): {exc}", **exc.result())
            return result
        applied = self._call(args, texts, manifest, sent, planned, task_vars, deltas=deltas)
        if not applied.get("failed") and "need" in applied:
            # The secondary's current generation is not the one expected: send what it lacks.
            deltas = {}
            sent = sorted(set(sent) | set(applied["need"]))
            applied = self._call(args, texts, manifest, sent, planned, task_vars)
            if not applied.get("failed") and "need" in applied:
                sent = sorted(manifest)
                applied = self._call(args, texts, manifest, sent, planned, task_vars)
        applied.pop("need", None)
        applied["sent_files"] = sorted(sent)
        applied["sent_changed_lines"] = sorted(deltas)
        applied["aliases_parsed"] = parsed
        self._save_hint(hint_path, manifest, applied, texts, (planned, plan_key))
        result.update(applied)
        return result

    def _hint_path(self, task_vars, base):
        """Where the controller remembers the manifest last pushed to this host and base_dir."""
        host = (task_vars or {}).get("inventory_hostname", "")
        key = gen.digest(f"{host}\0{base}".encode())[:24]
        return os.path.join(HINT_DIR, f"{key}.json")

    def _deltas(self, hint_path, sent, texts, remembered):
        """Changed lines of each big changed file whose last pushed text the controller kept."""
        try:
            with open(_texts_path(hint_path), encoding="utf-8") as f:
                kept = json.load(f)
        except (OSError, ValueError):
            return {}
        deltas = {}
        for rel in sent:
            old = kept.get(rel) if isinstance(kept, dict) else None
            new = texts[rel][0]
            if not isinstance(old, str) or len(new) < DELTA_MIN or rel not in remembered:
                continue
            base_sha = remembered[rel]["sha256"]
            if gen.digest(old.encode("utf-8")) != base_sha:
                continue
            delta = gen.line_delta(old, new)
            if delta is not None:
                delta["base_sha256"] = base_sha
                deltas[rel] = delta
        return deltas

    def _save_hint(self, path, manifest, outcome, texts=None, planned=(None, None)):
        if self._task.check_mode or outcome.get("failed"):
            return
        if texts is not None and (outcome.get("changed") or not os.path.exists(_texts_path(path))):
            big = {rel: text for rel, (text, _shown) in texts.items() if len(text) >= DELTA_MIN}
            _write_json(_texts_path(path), big)
        hint = {
            "files": manifest,
            "generation": outcome.get("generation"),
            "manifest_sha256": outcome.get("manifest_sha256"),
            "manifest": outcome.get("manifest"),
            "plan": planned[0],
            "plan_key": planned[1],
        }
        _write_json(path, hint)

    def _heartbeat_only(self, args, hint, base):
        """The unchanged run without the module: None when the secondary is not as remembered.

        Under the lock, the shell checks that ``current`` is the remembered generation,
        that its MANIFEST.json has the remembered sha256, that the generation holds as
        many files as the manifest lists and none written after MANIFEST.json (a file
        edited, removed or added on disk sends the run to the module, which repairs
        the generation), and that no run left ``.incoming-*`` behind; then it rewrites
        the heartbeat as the module would.
        """
        gen_id = hint.get("generation") or ""
        sha = hint.get("manifest_sha256") or ""
        mode = args.get("mode") or "0640"
        manifest = hint.get("manifest") or {}
        if not (gen.ID_RE.match(gen_id) and _SHA.match(sha) and gen.SAFE_PATH.match(base)):
            return None
        if not isinstance(mode, str) or not _MODE.match(mode) or not isinstance(manifest, dict):
            return None
        if not isinstance(manifest.get("files"), dict):
            return None
        count = len(manifest["files"]) + 1  # and MANIFEST.json
        now = int(time.time())
        body = {"generation": gen_id, "time": now, "changed": False, "source": manifest.get("source")}
        owner = args.get("owner") or ""
        group = args.get("group") or ""
        chown = (
            f'chown {shlex.quote(owner + (":" + group if group else ""))} "$t" && ' if owner or group else ""
        )
        timeout = float(args.get("lock_timeout") if args.get("lock_timeout") is not None else 60)
        link = shlex.quote(f"generations/{gen_id}")
        script = (
            f'cd {shlex.quote(base)} && [ -f .lock ] && [ "$(readlink current)" = {link} ] || exit 3; '
            'command -v flock >/dev/null || exit 3; for f in .incoming-*; do [ -e "$f" ] && exit 3; done; '
            f"exec 9>>.lock && flock -w {timeout:g} 9 || exit 4; "
            f'[ "$(readlink current)" = {link} ] || exit 3; '
            f's=$(sha256sum {link}/MANIFEST.json) && [ "${{s%% *}}" = {sha} ] || exit 3; '
            f'[ "$(find {link}/ ! -type d | wc -l)" = {count} ] || exit 3; '
            f'[ -z "$(find {link}/ -type f -newer {link}/MANIFEST.json -print -quit)" ] || exit 3; '
            "t=$(mktemp .incoming-XXXXXXXXXX) || exit 3; "
            f"printf '%s\\n' {shlex.quote(json.dumps(body, sort_keys=True))} > \"$t\" && "
            f'chmod {mode} "$t" && {chown}(sync "$t" 2>/dev/null; true) && mv -f "$t" heartbeat '
            "&& (sync . 2>/dev/null; true) && echo alias-sync-heartbeat-ok"
        )
        done = self._low_level_execute_command(script, sudoable=True)
        if done.get("rc") == 4:
            return {"failed": True, "msg": f"another alias_sync run holds {base}/.lock: gave up after "
                    f"{timeout:g} s (lock_timeout)"}  # fmt: skip
        if done.get("rc") != 0 or "alias-sync-heartbeat-ok" not in done.get("stdout", ""):
            return None
        return {
            "changed": False,
            "generation": gen_id,
            "previous": gen_id,
            "changed_files": [],
            "counts": manifest.get("counts", {}),
            "errors": manifest.get("errors", []),
            "manifest": manifest,
            "manifest_sha256": sha,
            "heartbeat": {"path": f"{base}/heartbeat", "time": now, "written": True},
            "cleaned": [],
            "pruned": [],
            "heartbeat_only": True,
        }

    def _call(self, args, texts, manifest, sent, planned, task_vars, probe=False, deltas=None):
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
        if deltas:
            module_args["transfer"]["deltas"] = deltas
        if planned is not None:
            module_args["transfer"]["plan"] = planned
        return self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)


def _texts_path(hint_path):
    return hint_path[: -len(".json")] + ".texts.json"


def _write_json(path, value):
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f)
        os.replace(tmp, path)
    except OSError:
        pass  # only a hint: the next run asks the secondary first


def _load_hint(path):
    try:
        with open(path, encoding="utf-8") as f:
            hint = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(hint, dict) or not isinstance(hint.get("files"), dict):
        return None
    return hint

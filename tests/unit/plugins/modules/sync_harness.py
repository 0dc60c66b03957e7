# SPDX-License-Identifier: GPL-3.0-or-later
"""Run smartmx.exim.alias_sync in-process through the AnsibleModule machinery."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smartmx.exim.plugins.modules import alias_sync


class Exit(Exception):
    """exit_json or fail_json was called."""

    def __init__(self, result, failed):
        Exception.__init__(self, result.get("msg", ""))
        self.result = result
        self.failed = failed


def run_module(monkeypatch, args, check=False, diff=False, module=alias_sync):
    """Run the module (alias_sync unless another is given) with args; return (result, failed)."""

    def exit_json(self, **kwargs):
        raise Exit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exit(kwargs, True)

    monkeypatch.setattr(module.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(module.AnsibleModule, "fail_json", fail_json)
    full = dict(args)
    full["_ansible_check_mode"] = check
    full["_ansible_diff"] = diff
    with patch_module_args(full), pytest.raises(Exit) as got:
        module.main()
    return got.value.result, got.value.failed


def tree(base):
    """Every path below base with its kind, target or content (for before/after comparisons)."""
    out = {}
    for root, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, base)
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", st.st_mode)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", st.st_mode, st.st_mtime_ns, f.read())
    return out


def current(base):
    """(id, manifest) of base/current."""
    gen_id = os.path.basename(os.readlink(os.path.join(base, "current")))
    with open(os.path.join(base, "generations", gen_id, "MANIFEST.json"), encoding="utf-8") as f:
        return gen_id, json.load(f)

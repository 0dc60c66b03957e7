# SPDX-License-Identifier: GPL-3.0-or-later
"""Run tests/playbooks/filters.yml with ansible-playbook and check what it computed."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_filters_from_a_play(tmp_path):
    out = tmp_path / "routes.json"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run(
        [playbook, "-i", "localhost,", os.path.join(HERE, "filters.yml"), "-e", f"result_file={out}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed=0" in proc.stdout
    tables = json.loads(out.read_text())
    patch, pre = tables["patch"], tables["precompute"]
    assert patch["routes"]["trolls"]["punt"] == ["adb@gnu.test", "trolls-archive@gnu.test", "zarkon@gnu.test"]
    for key, route in patch["routes"].items():
        other = pre["routes"][key]
        assert (route["action"], route["deliver"], route["punt"]) == (
            other["action"],
            other["deliver"],
            other["punt"],
        )

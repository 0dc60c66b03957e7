# SPDX-License-Identifier: GPL-3.0-or-later
"""mx_secondary's configuration when the primary's facts cannot be gathered (it is down)."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

INVENTORY = """\
all:
  children:
    mx_primary:
      hosts:
        mx1.gnu.test: {ansible_connection: local}
    mx_secondary:
      hosts:
        localhost: {ansible_connection: local, ansible_python_interpreter: "{{ ansible_playbook_python }}"}
"""


def _render(tmp_path, *extra_vars):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    out = tmp_path / "exim4.conf"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = [
        playbook,
        "-i",
        str(inventory),
        os.path.join(HERE, "secondary_render.yml"),
        "-e",
        f"result_file={out}",
    ]
    for var in extra_vars:
        cmd += ["-e", var]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, out


def test_a_primary_without_facts_fails_with_the_variables_to_set(tmp_path):
    proc, out = _render(tmp_path)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "mx1.gnu.test has no mx_primary_hostname" in text, text[-3000:]
    assert "mx_secondary_primary_hostname and mx_secondary_primary_address" in text
    assert not out.exists()


def test_the_primary_named_by_variables_renders_without_its_facts(tmp_path):
    proc, out = _render(
        tmp_path, "mx_secondary_primary_hostname=mx1.gnu.test", "mx_secondary_primary_address=192.0.2.25"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    config = out.read_text()
    assert "PRIMARY_HOST = mx1.gnu.test\n" in config
    assert "hostlist primary_address = 192.0.2.25\n" in config

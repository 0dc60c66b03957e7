#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: mx_probe
short_description: Read, in one call, what the drift check compares on a mail exchanger
version_added: 0.1.0
description:
  - Gathers on one host, without changing anything, the facts that P(smartmx.exim.drift_report#filter)
    compares with what the controller expects. The result is always C(changed=false).
  - C(generation) - the generation C(current) names below O(base_dir), its C(MANIFEST.json), the
    digest of its files, and whether every file on disk still holds what was pushed (the
    relocated C(:include:) paths undone exactly as M(smartmx.exim.alias_sync) does when it reads
    a generation again), with the files that differ, are missing or are not in the manifest.
  - C(heartbeat) - whether C(<base_dir>/heartbeat) exists, its modification time and its JSON content.
  - C(exim) - the first line of C(exim4 -bV), the versions of the exim packages and their hold state
    (C(dpkg-query)), whether they carry the local build's suffix O(local_suffix), and the newest
    C(exim4-base) version the apt cache offers without that suffix (C(apt-cache policy), no network
    access, the cache is read as it is).
  - C(config) - the sha256 and modification time of the exim configuration O(config_path), the exim
    daemons (C(-bd) processes whose parent is not one) with their start time read from C(/proc),
    and whether a daemon started more than a second before the configuration last changed (it runs
    an older one; the kernel gives the boot time, which start times count from, to the second).
  - C(units) - C(systemctl show) properties of the systemd units O(units).
  - C(routing) - what exim decides for each of O(addresses) (C(exim4 -bt), O(batch_size) addresses
    per run) - delivered to other hosts, routed to the primary (O(primary_transport)), both, refused
    or deferred.
  - A missing file, directory or command is reported in the result, never a failure. The task fails
    only for bad options.
author:
  - smartmx.exim maintainers (!UNKNOWN)
options:
  sections:
    description:
      - What to gather. C(routing) runs only when O(addresses) is not empty.
    type: list
    elements: str
    choices: [generation, heartbeat, exim, config, units, routing]
    default: [generation, heartbeat, exim, config, units, routing]
  base_dir:
    description:
      - The generation directory of M(smartmx.exim.alias_sync), as that module was given it (the
        relocated C(:include:) paths name it).
    type: path
    default: /var/lib/smartmx/aliases
  exim_path:
    description: The exim binary, a name looked up in C(PATH) and C(/usr/sbin) or an absolute path.
    type: str
    default: exim4
  local_suffix:
    description:
      - The version suffix of the locally built exim packages (role C(exim_build)).
      - Versions that carry it are left out of RV(exim.apt_newest).
    type: str
    default: "+smartmx1"
  config_path:
    description: The exim configuration file the daemon reads.
    type: path
    default: /etc/exim4/exim4.conf
  units:
    description:
      - systemd units to report (for example C(exim4.service), C(smartmx-alias-sync.timer)).
    type: list
    elements: str
    default: []
  addresses:
    description:
      - Addresses to route with C(exim4 -bt). Each is given to exim as it is (quote a local part
        that is not a dot-atom, as in C("with space"@example.org)).
      - Needs root or an exim admin user for the reasons of refused and deferred addresses.
    type: list
    elements: str
    default: []
  batch_size:
    description: Addresses per C(exim4 -bt) run.
    type: int
    default: 500
  primary_transport:
    description: The transport that sends to the primary MX (role C(mx_secondary) names it C(to_primary)).
    type: str
    default: to_primary
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    description: Changes nothing, so it has nothing to show.
    support: none
  platform:
    platforms: posix
    support: full
    description: Linux (reads C(/proc)); Debian tools for the C(exim) section.
notes:
  - C(exim4 -bt) looks up the DNS for addresses of other domains, as exim does when it routes them.
  - Times are seconds since the epoch on the host's clock; RV(time) is the host's time when the
    probe ran, so ages can be computed without trusting the controller's clock.
seealso:
  - plugin: smartmx.exim.drift_report
    plugin_type: filter
  - module: smartmx.exim.alias_sync
"""

EXAMPLES = r"""
- name: Probe the secondary
  smartmx.exim.mx_probe:
    units:
      - exim4.service
    addresses:
      - rms@gnu.test
      - trolls@gnu.test
      - nosuch@gnu.test
  register: probe

- name: Only the alias data and the heartbeat, from another base directory
  smartmx.exim.mx_probe:
    sections: [generation, heartbeat]
    base_dir: /srv/smartmx/aliases
"""

RETURN = r"""
time:
  description: The host's time when the probe ran (seconds since the epoch).
  returned: always
  type: float
timing:
  description: Seconds spent in each section gathered.
  returned: always
  type: dict
  sample: {generation: 0.012, heartbeat: 0.0001, exim: 0.21, config: 0.004, units: 0.05, routing: 0.3}
generation:
  description: The current generation of the alias data.
  returned: when gathered
  type: dict
  contains:
    base_dir: {description: O(base_dir) without a final slash., type: str}
    exists: {description: Whether O(base_dir) is a directory., type: bool}
    current: {description: "Id of the generation C(current) points at, or null.", type: str}
    current_target: {description: The link's target as stored., type: str}
    generations: {description: "Ids of the generations present, sorted.", type: list, elements: str}
    manifest:
      description: >-
        The C(MANIFEST.json) of the current generation without its C(relocations) and C(errors)
        (C(errors_count) says how many it has).
      type: dict
    manifest_sha256: {description: sha256 of C(MANIFEST.json) as stored., type: str}
    files_digest:
      description: The digest of the manifest's files (the one the generation id is made of).
      type: str
    intact: {description: Every file matches the manifest and no other file is there., type: bool}
    mismatched:
      description: Files whose pushed content differs from the manifest's sha256.
      type: list
      elements: str
    missing: {description: Files of the manifest that are not on disk., type: list, elements: str}
    extra: {description: Files on disk the manifest does not list., type: list, elements: str}
    error: {description: Why the generation could not be read (or null)., type: str}
  sample:
    base_dir: /var/lib/smartmx/aliases
    current: 20261202T005505Z-06010933ce21
    files_digest: 06010933ce21a5...
    intact: true
    mismatched: []
    missing: []
    extra: []
heartbeat:
  description: The heartbeat file.
  returned: when gathered
  type: dict
  sample: {path: /var/lib/smartmx/aliases/heartbeat, exists: true, mtime: 1796172905.41,
           content: {generation: 20261202T005505Z-06010933ce21, time: 1796172905}, error: null}
exim:
  description: The exim build.
  returned: when gathered
  type: dict
  contains:
    bV: {description: First line of C(exim -bV)., type: str}
    version: {description: The exim version it names., type: str}
    packages:
      description: >-
        Per exim package C(version) (null when not installed), C(status), C(installed), C(hold),
        C(local_suffix).
      type: dict
    daemon_package: {description: The installed daemon package (heavy or light)., type: str}
    installed_version: {description: Version of C(exim4-base)., type: str}
    base_version: {description: That version without O(local_suffix)., type: str}
    local_build: {description: Every installed exim package carries O(local_suffix)., type: bool}
    held: {description: Installed exim packages on hold., type: list, elements: str}
    apt_newest: {description: Newest C(exim4-base) an archive offers without O(local_suffix)., type: str}
    apt_offered: {description: "Every such version, oldest first.", type: list, elements: str}
    apt_candidate: {description: What apt would install., type: str}
    errors: {description: Commands that could not run., type: list, elements: str}
  sample:
    bV: "Exim version 4.96 #2 built 27-May-2026 16:52:26"
    version: "4.96"
    installed_version: 4.96-15+deb12u10+smartmx1
    base_version: 4.96-15+deb12u10
    local_build: true
    held: [exim4-base, exim4-config, exim4-daemon-light]
    apt_newest: 4.96-15+deb12u11
config:
  description: The exim configuration and the daemons.
  returned: when gathered
  type: dict
  sample:
    path: /etc/exim4/exim4.conf
    exists: true
    sha256: 3b1f...
    mtime: 1796172840.2
    daemons: [{pid: 812, ppid: 1, args: /usr/sbin/exim4 -bd -q30m, start: 1796172851.5}]
    daemon_count: 1
    daemon_pid: 812
    daemon_start: 1796172851.5
    daemon_older_than_config: false
    error: null
units:
  description: >-
    Per unit C(LoadState), C(ActiveState), C(SubState), C(UnitFileState), C(Result),
    C(ExecMainStatus), the raw C(LastTriggerUSec) and C(NextElapseUSecRealtime) of a timer and the
    same as epoch seconds in C(LastTrigger) and C(NextElapse) (null when unset).
  returned: when gathered
  type: dict
  sample:
    exim4.service: {LoadState: loaded, ActiveState: active, SubState: running, UnitFileState: enabled,
                    Result: success, ExecMainStatus: 0, LastTrigger: null, NextElapse: null}
routing:
  description: >-
    Per address, one of C({result: remote, to: [...]}), C({result: primary, primary: [...]}),
    C({result: mixed, to: [...], primary: [...]}), C({result: refused, message: ...}),
    C({result: defer, message: ...}), C({result: discard}), or C({result: error, message: ...}) when
    exim printed nothing readable. C(to) are the final addresses exim routes to other transports,
    C(primary) those routed to O(primary_transport) (the address itself when it goes there whole),
    sorted, domains lower-cased. Routed addresses may carry C(failed) and C(deferred) children.
  returned: when gathered
  type: dict
  sample:
    rms@gnu.test: {result: remote, to: [rms@offsite.test]}
    info-gnu@gnu.test: {result: primary, primary: [info-gnu@gnu.test]}
    trolls@gnu.test:
      result: mixed
      to: [nemo@offsite.test]
      primary: [adb@gnu.test, trolls-archive@gnu.test]
    nosuch@gnu.test: {result: refused, message: Unrouteable address}
routing_errors:
  description: Runs of C(exim -bt) that failed, and why (the addresses of such a run get C(result=error)).
  returned: when routing was gathered
  type: list
  elements: str
"""

import os  # noqa: E402 (imports follow the documentation blocks)
import re  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.smartmx.exim.plugins.module_utils import _mx_probe as probe  # noqa: E402

SECTIONS = ["generation", "heartbeat", "exim", "config", "units", "routing"]
UNIT_NAME = re.compile(r"\A[A-Za-z0-9:_.\\@-]+\.(service|timer|path|socket|target|mount|slice|scope)\Z")
ENV = {"LC_ALL": "C", "LANG": "C", "TZ": "UTC"}

ARGUMENT_SPEC = dict(
    sections=dict(type="list", elements="str", choices=SECTIONS, default=list(SECTIONS)),
    base_dir=dict(type="path", default="/var/lib/smartmx/aliases"),
    exim_path=dict(type="str", default="exim4"),
    local_suffix=dict(type="str", default="+smartmx1"),
    config_path=dict(type="path", default="/etc/exim4/exim4.conf"),
    units=dict(type="list", elements="str", default=[]),
    addresses=dict(type="list", elements="str", default=[]),
    batch_size=dict(type="int", default=500),
    primary_transport=dict(type="str", default="to_primary"),
)


def _bad_options(p):
    if not p["base_dir"].startswith("/"):
        return f"base_dir {p['base_dir']!r} must be an absolute path"
    if not p["config_path"].startswith("/"):
        return f"config_path {p['config_path']!r} must be an absolute path"
    if p["batch_size"] < 1:
        return f"batch_size must be at least 1, got {p['batch_size']}"
    for unit in p["units"]:
        if not UNIT_NAME.match(unit):
            return f"units: {unit!r} is not a systemd unit name (name.service, name.timer, ...)"
    for address in p["addresses"]:
        if not address.strip() or any(ord(c) < 32 or ord(c) == 127 for c in address):
            return f"addresses: {address!r} is empty or holds a control character"
    if not p["primary_transport"].strip():
        return "primary_transport must not be empty"
    return None


class Probe:
    def __init__(self, module):
        self.module = module
        self.p = module.params

    def bin(self, name):
        if "/" in name:
            return name if os.access(name, os.X_OK) else None
        return self.module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])

    def run(self, args):
        rc, out, err = self.module.run_command(args, environ_update=ENV, check_rc=False)
        return rc, out, err

    def generation(self):
        return probe.generation_state(self.p["base_dir"])

    def heartbeat(self):
        return probe.heartbeat_state(os.path.join(self.p["base_dir"].rstrip("/"), probe.HEARTBEAT))

    def exim(self):
        errors = []
        bv = dpkg = policy = ""
        exim = self.bin(self.p["exim_path"])
        if exim:
            rc, bv, err = self.run([exim, "-bV"])
            if rc != 0:
                errors.append(f"{exim} -bV exited {rc}: {err.strip()[:500]}")
        else:
            errors.append(f"{self.p['exim_path']} not found")
        dpkg_query = self.bin("dpkg-query")
        if dpkg_query:
            # dpkg-query reads the \\t and \\n escapes itself; it exits 1 when a
            # package is unknown, and still lists the others
            fmt = r"${Package}\t${Version}\t${db:Status-Abbrev}\t${db:Status-Want}\n"
            rc, dpkg, err = self.run([dpkg_query, "-W", "-f", fmt, *probe.EXIM_PACKAGES])
            if rc not in (0, 1):
                errors.append(f"dpkg-query exited {rc}: {err.strip()[:500]}")
        else:
            errors.append("dpkg-query not found")
        apt_cache = self.bin("apt-cache")
        if apt_cache:
            rc, policy, err = self.run([apt_cache, "policy", "exim4-base"])
            if rc != 0:
                errors.append(f"apt-cache policy exited {rc}: {err.strip()[:500]}")
        else:
            errors.append("apt-cache not found")
        return probe.build_state(bv, dpkg, policy, self.p["local_suffix"], errors)

    def config(self):
        return probe.config_state(self.p["config_path"])

    def units(self):
        units = self.p["units"]
        if not units:
            return {}
        systemctl = self.bin("systemctl")
        if not systemctl:
            return {u: {"error": "systemctl not found"} for u in units}
        props = ",".join(probe.UNIT_PROPERTIES)
        rc, out, err = self.run([systemctl, "show", "-p", props, "--", *units])
        if rc != 0 and not out.strip():
            return {u: {"error": f"systemctl show exited {rc}: {err.strip()[:500]}"} for u in units}
        return probe.parse_systemctl_show(out, units)

    def routing(self):
        addresses = list(dict.fromkeys(self.p["addresses"]))
        if not addresses:
            return {}, []
        exim = self.bin(self.p["exim_path"])
        if not exim:
            msg = f"{self.p['exim_path']} not found"
            return {a: {"result": "error", "message": msg} for a in addresses}, [msg]
        out, errors = {}, []
        for chunk in probe.batches(addresses, self.p["batch_size"]):
            rc, stdout, stderr = self.run([exim, "-bt", "--", *chunk])
            if rc not in (0, 1, 2):
                msg = f"exim -bt exited {rc}: {stderr.strip()[:500]}"
                errors.append(msg)
                out.update({a: {"result": "error", "message": msg} for a in chunk})
                continue
            out.update(probe.parse_bt(stdout, chunk, self.p["primary_transport"]))
        return out, errors


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    bad = _bad_options(module.params)
    if bad:
        module.fail_json(msg=bad)
    worker = Probe(module)
    result = {"changed": False, "time": time.time(), "timing": {}}
    for section in SECTIONS:
        if section not in module.params["sections"]:
            continue
        started = time.monotonic()
        if section == "routing":
            result["routing"], result["routing_errors"] = worker.routing()
        else:
            result[section] = getattr(worker, section)()
        result["timing"][section] = round(time.monotonic() - started, 6)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

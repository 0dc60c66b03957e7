# SPDX-License-Identifier: GPL-3.0-or-later
"""The image ``smartmx-lab/exim-patched:bookworm``: Debian's exim4 with the transport_pfr patch.

The image is made from the debs the ``exim_build`` role leaves in the controller
cache, ``$SMARTMX_CACHE_DIR/debs/<key>/`` (default ``~/.cache/smartmx-exim``, as
the role's): the entry whose ``BUILDINFO`` names the sha256 of the current
4.96 patch, ``roles/exim_build/files/patches/4.96/99_transport_pfr.patch``,
after its ``SHA256SUMS`` has been checked and every package the image installs
is found in it. When the cache holds no such entry, ``build_patched.yml`` runs
the role with ``ansible-playbook`` against a throwaway container
(``smartmx-exim-decide-build``), which builds the packages and seals the entry;
its output goes to stderr as it comes (a cold build takes several minutes).

The image carries the patch's sha256 as a label and is made again only when the
patch changes. Command line: ``python tests/differential/patched_exim.py``
ensures the image and prints its id and the cache entry used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exim_truth import HarnessError, _run, image_label

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMAGE = "smartmx-lab/exim-patched:bookworm"
BASE_IMAGE = "smartmx-lab/debian:bookworm"
BUILD_CONTAINER = "smartmx-exim-decide-build"
SERIES = "4.96"
RELEASE = "bookworm"
PATCH = REPO / "roles" / "exim_build" / "files" / "patches" / SERIES / "99_transport_pfr.patch"
PACKAGES = ("exim4-base", "exim4-config", "exim4-daemon-light")
PATCH_LABEL = "smartmx.patch-sha256"
ENTRY_LABEL = "smartmx.debs-entry"
PLAYBOOK = HERE / "build_patched.yml"

DOCKERFILE = f"""\
# SPDX-License-Identifier: GPL-3.0-or-later
# Made by tests/differential/patched_exim.py from the exim_build role's cached debs.
FROM {BASE_IMAGE}
COPY debs/ /var/cache/smartmx-exim/
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d \\
    && chmod 0755 /usr/sbin/policy-rc.d \\
    && apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
       {" ".join(f"/var/cache/smartmx-exim/{p}_*.deb" for p in PACKAGES)} \\
    && rm -rf /var/lib/apt/lists/* \\
    && rm -f /usr/sbin/policy-rc.d
CMD ["sleep", "infinity"]
"""


def progress(message: str) -> None:
    """Say what a slow step is doing, on the real stderr (pytest captures sys.stderr)."""
    print(f"[patched-exim {time.strftime('%H:%M:%S')}] {message}", file=sys.__stderr__, flush=True)


def cache_dir() -> Path:
    """The exim_build role's default controller cache directory."""
    env = os.environ.get("SMARTMX_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "smartmx-exim"


def patch_sha256() -> str:
    return hashlib.sha256(PATCH.read_bytes()).hexdigest()


def _buildinfo(entry: Path) -> dict[str, str]:
    info = {}
    for line in (entry / "BUILDINFO").read_text(encoding="utf-8").splitlines():
        key, _sep, value = line.partition(": ")
        info[key.strip()] = value.strip()
    return info


def check_entry(entry: Path) -> list[str]:
    """Problems with a cache entry: SHA256SUMS must hold and name every package; [] when sound."""
    sums = entry / "SHA256SUMS"
    if not sums.is_file():
        return [f"{entry}: no SHA256SUMS"]
    problems, listed = [], set()
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _sep, name = line.partition("  ")
        name = name.strip()
        listed.add(name)
        path = entry / name
        if not path.is_file():
            problems.append(f"{entry}: {name} is listed but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest.strip():
            problems.append(f"{entry}: {name} does not match SHA256SUMS")
    for package in PACKAGES:
        if not any(n.startswith(f"{package}_") and n.endswith(".deb") for n in listed):
            problems.append(f"{entry}: no {package} deb in SHA256SUMS")
    return problems


def find_entry() -> Path | None:
    """The newest sound cache entry built from the current patch for the 4.96 series."""
    want = patch_sha256()
    found = []
    for buildinfo in (cache_dir() / "debs").glob("*/BUILDINFO"):
        entry = buildinfo.parent
        try:
            info = _buildinfo(entry)
        except OSError:
            continue
        if info.get("patch_sha256") != want or not info.get("source_version", "").startswith(SERIES):
            continue
        if info.get("release", RELEASE) != RELEASE:  # older entries do not record it
            continue
        problems = check_entry(entry)
        if problems:
            progress("ignoring a cache entry: " + "; ".join(problems))
            continue
        found.append((buildinfo.stat().st_mtime, entry))
    return max(found)[1] if found else None


def build_debs() -> None:
    """Run the exim_build role on a throwaway container; it fills and seals the cache entry."""
    _run(["docker", "rm", "-f", "-v", BUILD_CONTAINER], check=False)
    _run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            BUILD_CONTAINER,
            "--label",
            "smartmx.role=exim-decide-build",
            BASE_IMAGE,
            "sleep",
            "infinity",
        ]
    )
    try:
        # No service starts in the build container (the role installs exim4 there too).
        _run(
            [
                "docker",
                "exec",
                BUILD_CONTAINER,
                "sh",
                "-c",
                "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d"
                " && chmod 0755 /usr/sbin/policy-rc.d",
            ]
        )
        with tempfile.TemporaryDirectory() as tmp:
            inventory = Path(tmp) / "inventory.ini"
            inventory.write_text(
                "[exim_decide_build]\n"
                f"{BUILD_CONTAINER} ansible_connection=community.docker.docker "
                "ansible_python_interpreter=/usr/bin/python3\n",
                encoding="utf-8",
            )
            env = dict(os.environ)
            env.update(
                {
                    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                    "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"),
                    "SMARTMX_CACHE_DIR": str(cache_dir()),
                    "ANSIBLE_FORCE_COLOR": "0",
                }
            )
            command = [
                shutil.which("ansible-playbook") or "ansible-playbook",
                "-i",
                str(inventory),
                str(PLAYBOOK),
            ]
            progress(
                f"no cached build of {PATCH.relative_to(REPO)} in {cache_dir()}: "
                f"building ({' '.join(command)})"
            )
            start = time.monotonic()
            with subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ) as proc:
                tail: list[str] = []
                shown = start
                for line in proc.stdout:
                    line = line.rstrip("\n")
                    tail = [*tail[-40:], line]
                    if line.startswith("ASYNC POLL") and time.monotonic() - shown >= 60:
                        shown = time.monotonic()
                        progress(f"still building, {shown - start:.0f} s since the play started")
                    if (
                        line.startswith(("TASK ", "PLAY ", "fatal:", "failed:", "ok: [", "changed: ["))
                        or "msg:" in line
                    ):
                        progress(line[:200])
                rc = proc.wait()
            if rc != 0:
                raise HarnessError(f"the exim_build play failed ({rc}):\n" + "\n".join(tail))
            progress(f"built in {time.monotonic() - start:.0f} s")
    finally:
        _run(["docker", "rm", "-f", "-v", BUILD_CONTAINER], check=False)


def ensure_image() -> str:
    """Make the patched image unless one for the current patch exists; return its id.

    An image for the current patch is kept only while this run's cache holds the entry it
    was made from: a fresh checkout's cache (CI's) gets its build here, where the lab and
    the scenarios of the same run take it, instead of in the first ``make lab``.
    """
    want = patch_sha256()
    found = image_label(IMAGE, PATCH_LABEL)
    if found and found[1] == want:
        made_from = image_label(IMAGE, ENTRY_LABEL)
        if made_from and made_from[1] and not check_entry(cache_dir() / "debs" / made_from[1]):
            return found[0]
        progress(f"{IMAGE} is current, but {cache_dir()} lacks the packages it was made from")
    entry = find_entry()
    if entry is None:
        build_debs()
        entry = find_entry()
        if entry is None:
            raise HarnessError(f"the exim_build play left no sound cache entry for {PATCH} in {cache_dir()}")
    progress(f"making {IMAGE} from {entry}")
    with tempfile.TemporaryDirectory() as tmp:
        debs = Path(tmp) / "debs"
        debs.mkdir()
        for package in PACKAGES:
            for deb in entry.glob(f"{package}_*.deb"):
                shutil.copy2(deb, debs / deb.name)
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        _run(
            [
                "docker",
                "build",
                "-q",
                "--label",
                f"{PATCH_LABEL}={want}",
                "--label",
                f"{ENTRY_LABEL}={entry.name}",
                "-t",
                IMAGE,
                tmp,
            ],
            timeout=1800,
        )
    return _run(["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE]).stdout.strip()


def main() -> int:
    start = time.monotonic()
    image_id = ensure_image()
    entry = _run(
        ["docker", "image", "inspect", "--format", '{{index .Config.Labels "' + ENTRY_LABEL + '"}}', IMAGE]
    ).stdout.strip()
    print(f"{IMAGE} {image_id} from {cache_dir() / 'debs' / entry} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

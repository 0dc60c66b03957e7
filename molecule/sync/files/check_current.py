# SPDX-License-Identifier: GPL-3.0-or-later
"""Check the active generation of an alias_sync base directory; print JSON.

current must be a relative symlink to generations/<id>, the id must match
MANIFEST.json, every file the manifest lists must be there, and the files
stored as pushed (rcpt, punt) must have the manifest's sha256 and size. With
--clean, no .incoming-* directory may be left. Also reports the generation the
heartbeat names (null without a readable heartbeat).
"""

import hashlib
import json
import os
import sys


def main():
    base = sys.argv[1]
    problems = []
    link = os.readlink(os.path.join(base, "current"))
    gen = os.path.join(base, link)
    if os.path.isabs(link) or not link.startswith("generations/"):
        problems.append(f"current -> {link} is not a relative link into generations/")
    with open(os.path.join(gen, "MANIFEST.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    if manifest.get("generation") != os.path.basename(link):
        problems.append(f"MANIFEST.json names {manifest.get('generation')}, current is {link}")
    for rel, meta in sorted(manifest.get("files", {}).items()):
        path = os.path.join(gen, rel)
        if not os.path.isfile(path):
            problems.append(f"{rel} is missing")
            continue
        if rel in ("rcpt", "punt"):
            with open(path, "rb") as handle:
                data = handle.read()
            if hashlib.sha256(data).hexdigest() != meta.get("sha256") or len(data) != meta.get("size"):
                problems.append(f"{rel} does not match the manifest")
    incoming = sorted(n for n in os.listdir(base) if n.startswith(".incoming-"))
    if "--clean" in sys.argv and incoming:
        problems.append(f"left over: {' '.join(incoming)}")
    try:
        with open(os.path.join(base, "heartbeat"), encoding="utf-8") as handle:
            heartbeat = json.load(handle).get("generation")
    except (OSError, ValueError):
        heartbeat = None
    print(json.dumps({"current": link, "incoming": incoming, "heartbeat": heartbeat, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

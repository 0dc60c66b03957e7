# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""Ask the secondary MXes to send what they hold for this primary, now (SMTP ETRN).

Exim has no ETRN client. This one sends ``ETRN #<domain>`` for every local
domain to every secondary named in the configuration file (JSON, written by
the role smartmx.exim.mx_primary):

  smartmx-etrn            send to every secondary now (exim4's ExecStartPost)
  smartmx-etrn --probe    for each secondary: connect; if it answers and did not
                          answer at the last probe (or this is the first probe
                          since boot), send; remember the answer in the state
                          directory (a timer runs this every few seconds, so a
                          primary whose network comes back is noticed at once)

Exit status: 0 when every secondary that was asked took the ETRN (250, or 458
because a run for that domain is already going), 1 otherwise. A probe that
finds a secondary unreachable is not an error.
"""

import argparse
import json
import os
import smtplib
import socket
import sys

DEFAULT_CONFIG = "/etc/smartmx/etrn.json"


def load(path):
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    for key in ("secondaries", "domains", "helo", "state_dir"):
        if key not in config:
            raise SystemExit(f"smartmx-etrn: {path}: no {key!r}")
    return config


def send(host, port, domains, helo, timeout):
    """ETRN every domain to one secondary; returns (ok, [one line per domain])."""
    lines = []
    ok = True
    with smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout) as smtp:
        smtp.ehlo_or_helo_if_needed()
        for domain in domains:
            code, text = smtp.docmd("ETRN", "#" + domain)
            answer = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            lines.append(f"ETRN #{domain} to {host}: {code} {answer}")
            ok = ok and code in (250, 251, 252, 253, 458)
    return ok, lines


def reachable(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def state_file(config, host):
    return os.path.join(config["state_dir"], host.replace("/", "_") + ".up")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--probe", action="store_true", help="send only to secondaries that came back")
    args = parser.parse_args(argv)
    config = load(args.config)
    port = int(config.get("port", 25))
    timeout = float(config.get("timeout", 5))
    os.makedirs(config["state_dir"], mode=0o755, exist_ok=True)
    failed = False
    for host in config["secondaries"]:
        marker = state_file(config, host)
        if args.probe:
            if not reachable(host, port, timeout):
                if os.path.exists(marker):
                    os.unlink(marker)
                    print(f"{host}: not reachable")
                continue
            if os.path.exists(marker):
                continue
        try:
            ok, lines = send(host, port, config["domains"], config["helo"], timeout)
        except (OSError, smtplib.SMTPException) as exc:
            print(f"{host}: {exc}")
            failed = True
            continue
        print("\n".join(lines))
        if ok:
            with open(marker, "w", encoding="utf-8") as handle:
                handle.write("up\n")
        else:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors
"""What one drained message costs exim itself on this machine, at the least.

The failover benchmark's drain is a queue run on the secondary handing its
queued punts to the primary over SMTP, the primary delivering each at once.
This benchmark runs the same movement with nothing of the roles in it: two
containers of the lab image, ``smartmx-floor-tx`` and ``smartmx-floor-rx``,
with Debian's stock exim4-daemon-heavy (``--flavour light``: exim4-daemon-light)
and a minimal configuration each
(``/etc/exim4/exim4.conf``, which Debian's exim reads before its own; no
ACL but accept, no TLS, no DNS, no retry rules to consult, one router):

1. tx queues ``--messages`` messages for rx (``exim4 -bS -odq``, one
   recipient each), outside the measurement;
2. ``--runners`` queue runners (``exim4 -qff``) on tx deliver them to rx over
   SMTP (connections reused, as exim does: ``-MC``); rx delivers each message
   at once (``smtp_accept_queue_per_connection = 0``) into a Maildir, as
   exim's user (``--rx-as-user``: as a user of its own, as a primary delivers
   into its users' mailboxes, for which exim executes itself again to regain
   root);
3. measured from the start of the runners until tx's queue is empty and rx's
   Maildir holds every message: the wall time and the CPU time of each
   container (its cgroup's ``cpuacct.usage``) and of the host's
   ``fuse-overlayfs`` processes (the storage driver's user-space layer, when
   the storage driver is fuse-overlayfs). The host watches tx's spool and rx's
   Maildir through ``/proc/<pid>/root``, so no process runs in the containers
   for it.

Two variants take exim's per-message executions away, to see what they cost:
``--tx-one-per-connection`` sets ``connection_max_messages = 1`` on tx's
transport (a new connection for every message instead of executing exim with
``-MC`` to pass the connection on), and ``--rx-queue-runners N`` makes rx queue
every message (``queue_only``) and runs N loops of ``exim4 -q`` (as root, so a
delivery is a fork, not an execution of exim to regain root). The second is not
what a primary should do: its deliveries wait for a queue run.

Each variant runs with the spools, exim's log and the Maildir on the container's
root file system (the storage driver's overlay), on Docker volumes (the host's
file system, as a mail host's data would be) and on a tmpfs (no storage cost at
all); ``rootfs`` puts ``/usr``, ``/etc`` and ``/var`` on Docker volumes, so
exim's program, libraries and configuration are read off the host's file
system too (no storage-driver layer at all). One JSON line per variant goes
to stdout (keys: storage, flavour, rx_as_user, tx_one_per_connection,
rx_queue_runners, runners, messages, wall_s,
msgs_per_s, tx_cpu_ms, rx_cpu_ms, fuse_cpu_ms, total_cpu_ms: CPU milliseconds
per message), progress to stderr, ``--repeat`` runs per variant (the line
gives the medians). The containers, their volumes and their
network are removed at the end.

    python bench/exim_floor.py                       # 1,000 messages, 1 and 3 runners, overlay, tmpfs, volume
    python bench/exim_floor.py --messages 300 --repeat 1 --storage tmpfs --flavour light

Exit status: 0 when every variant was measured; 1 when a step failed or timed out.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

IMAGE = "smartmx-lab/debian:bookworm"
NETWORK = "smartmx-floor"
SUBNET = "172.30.59.0/24"
TX, RX = "smartmx-floor-tx", "smartmx-floor-rx"
TX_IP, RX_IP = "172.30.59.10", "172.30.59.11"
CLK_TCK = os.sysconf("SC_CLK_TCK")

COMMON = """\
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
host_lookup = :
rfc1413_hosts = :
tls_advertise_hosts = :
"""

RX_CONFIG = (
    COMMON
    + """\
primary_hostname = rx.floor.test
acl_smtp_rcpt = acl_rcpt
smtp_accept_queue_per_connection = 0
smtp_accept_max = 100
recipients_max = 0
RX_QUEUE_ONLY

begin acl
acl_rcpt:
  accept

begin routers
sink:
  driver = accept
  transport = maildir

begin transports
maildir:
  driver = appendfile
  directory = /var/spool/floor/Maildir
  maildir_format
  create_directory
  user = RX_USER
  group = RX_USER
  mode = 0600
"""
)

TX_CONFIG = (
    COMMON
    + """\
primary_hostname = tx.floor.test
queue_only
remote_max_parallel = 1

begin routers
to_rx:
  driver = manualroute
  route_list = * RX_IP
  transport = to_rx

begin transports
to_rx:
  driver = smtp
  hosts_try_fastopen = :
  hosts_avoid_tls = *
TX_CONNECTION_MAX

begin retry
* * F,1h,1m
""".replace("RX_IP", RX_IP)
)


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} [floor] {msg}", file=sys.stderr, flush=True)


def run(*cmd, stdin=None, check=True):
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def dexec(name, script, stdin=None, check=True):
    return run("docker", "exec", "-i", name, "sh", "-c", script, stdin=stdin, check=check)


# Where the mail data lives (the spool, exim's log, the Maildir) per storage variant.
DATA_DIRS = ("/var/spool/exim4", "/var/log/exim4", "/var/spool/floor")


# Everything exim reads or writes, programs and libraries included, for the rootfs variant.
ROOTFS_DIRS = ("/usr", "/etc", "/var")


def volume_name(container, path):
    return f"{container}{path.replace('/', '-')}"


def remove():
    subprocess.run(["docker", "rm", "-f", "-v", TX, RX], capture_output=True, check=False)
    subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True, check=False)
    names = [volume_name(c, p) for c in (TX, RX) for p in DATA_DIRS]
    subprocess.run(["docker", "volume", "rm", "-f", *names], capture_output=True, check=False)


def cpu_counter_path(name):
    """The file holding the CPU time of container ``name``'s cgroup."""
    cid = run("docker", "inspect", "-f", "{{.Id}}", name).strip()
    for path in (
        f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage",
        f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage",
        f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat",
        f"/sys/fs/cgroup/docker/{cid}/cpu.stat",
    ):
        if os.path.exists(path):
            return path
    raise RuntimeError(f"no CPU accounting file found for container {name}")


def read_cpu_ns(path):
    """CPU nanoseconds in a file of cpu_counter_path (cgroup v1 or v2)."""
    with open(path) as f:
        text = f.read()
    if path.endswith("cpu.stat"):  # cgroup v2: usage_usec
        usage = dict(line.split() for line in text.splitlines())
        return int(usage["usage_usec"]) * 1000
    return int(text)


def cgroup_usage_ns(name):
    return read_cpu_ns(cpu_counter_path(name))


def fuse_cpu_s():
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "fuse-overlayfs":
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            continue
    return total / CLK_TCK


def start(storage, flavour, rx_user, tx_one_per_connection, rx_queue_only):
    remove()
    run("docker", "network", "create", "--subnet", SUBNET, NETWORK)
    for name, ip in ((TX, TX_IP), (RX, RX_IP)):
        args = ["docker", "run", "-d", "--name", name, "--hostname", name]
        args += ["--network", NETWORK, "--ip", ip]
        # docker's --init lives at /sbin/docker-init, inside /usr on merged-/usr Debian, which the
        # rootfs variant mounts over: a perl loop (perl-base is essential) reaps orphans instead.
        reaper = ["perl", "-e", "while (1) { sleep 1 if wait == -1 }"]
        if storage == "tmpfs":
            args += ["--tmpfs", "/var/spool/exim4:mode=0750", "--tmpfs", "/var/spool/floor"]
        elif storage == "volume":
            for path in DATA_DIRS:
                args += ["--mount", f"type=volume,source={volume_name(name, path)},target={path}"]
        elif storage == "rootfs":
            for path in ROOTFS_DIRS:
                args += ["--mount", f"type=volume,target={path}"]
        run(*args, IMAGE, *reaper)
    for name in (TX, RX):
        log(f"{name}: installing Debian's exim4-daemon-{flavour}")
        dexec(
            name,
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"exim4-daemon-{flavour} >/dev/null && mkdir -p /var/spool/floor "
            "&& chown Debian-exim:Debian-exim /var/spool/floor /var/spool/exim4 "
            "&& chown Debian-exim:adm /var/log/exim4",
        )
    one_per_connection = "  connection_max_messages = 1" if tx_one_per_connection else ""
    tx_config = TX_CONFIG.replace("TX_CONNECTION_MAX", one_per_connection)
    dexec(TX, "cat > /etc/exim4/exim4.conf", stdin=tx_config)
    if rx_user != "Debian-exim":
        dexec(RX, f"useradd --system --user-group {rx_user} && chown {rx_user}:{rx_user} /var/spool/floor")
    rx_config = RX_CONFIG.replace("RX_USER", rx_user)
    rx_config = rx_config.replace("RX_QUEUE_ONLY", "queue_only" if rx_queue_only else "")
    dexec(RX, "cat > /etc/exim4/exim4.conf", stdin=rx_config)
    dexec(RX, "pkill -x exim4; exim4 -bd -oX 25", check=False)
    for _attempt in range(50):
        if dexec(RX, "ss -Hltn 'sport = :25'", check=False).strip():
            return
        time.sleep(0.2)
    raise RuntimeError("exim on rx does not listen")


def batch(count, offset):
    lines = []
    for i in range(count):
        n = offset + i
        lines += [
            "MAIL FROM:<sender@tx.floor.test>",
            f"RCPT TO:<user{n % 50}@floor.test>",
            "DATA",
            f"Message-ID: <floor-{n}@tx.floor.test>",
            "From: sender@tx.floor.test",
            f"To: user{n % 50}@floor.test",
            f"Subject: floor {n}",
            "",
        ]
        lines += [f"line {k} of a message of about two kilobytes, like a short mail" for k in range(30)]
        lines += [".", "RSET"]
    lines.append("QUIT")
    return "\r\n".join(lines) + "\r\n"


def root_of(name):
    """The container's root file system as the host sees it (no process in the container)."""
    return f"/proc/{run('docker', 'inspect', '-f', '{{.State.Pid}}', name).strip()}/root"


def count(directory, suffix=""):
    try:
        return sum(1 for entry in os.scandir(directory) if entry.name.endswith(suffix))
    except FileNotFoundError:
        return 0


def delivered(rx_root):
    return count(f"{rx_root}/var/spool/floor/Maildir/new")


def queued(tx_root):
    """What exim4 -bpc counts: the -H files of the spool's input directory."""
    return count(f"{tx_root}/var/spool/exim4/input", "-H")


# One of --rx-queue-runners: queue runs one after another until the flag file appears.
RX_RUNNER_LOOP = "while [ ! -e /run/floor-stop ]; do exim4 -q; sleep 0.1; done"


def one_run(messages, runners, rx_runners, offset, timeout):
    dexec(TX, "exim4 -bS -odq", stdin=batch(messages, offset))
    tx_root, rx_root = root_of(TX), root_of(RX)
    if int(dexec(TX, "exim4 -bpc").strip()) != messages:
        raise RuntimeError(f"tx did not queue {messages} messages")
    before = delivered(rx_root)
    cpu0 = {name: cgroup_usage_ns(name) for name in (TX, RX)}
    fuse0 = fuse_cpu_s()
    t0 = time.monotonic()
    for _runner in range(runners):
        run("docker", "exec", "-d", TX, "exim4", "-qff")
    for _runner in range(rx_runners):
        run("docker", "exec", "-d", RX, "sh", "-c", RX_RUNNER_LOOP)
    while True:
        left, got = queued(tx_root), delivered(rx_root) - before
        if left == 0 and got >= messages:
            break
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timeout: {left} left on tx, {got} of {messages} delivered on rx")
        time.sleep(0.05)
    wall = time.monotonic() - t0
    cpu = {name: (cgroup_usage_ns(name) - cpu0[name]) / 1e9 for name in (TX, RX)}
    fuse = fuse_cpu_s() - fuse0
    if rx_runners:
        dexec(RX, "touch /run/floor-stop; while pgrep -f 'exim4 -q$' >/dev/null; do sleep 0.1; done")
        dexec(RX, "rm /run/floor-stop")
    if int(dexec(TX, "exim4 -bpc").strip()) != 0 or got != messages:
        raise RuntimeError(f"rx has {got} new messages, expected {messages}")
    return {
        "wall_s": wall,
        "tx_cpu_ms": cpu[TX] * 1000 / messages,
        "rx_cpu_ms": cpu[RX] * 1000 / messages,
        "fuse_cpu_ms": fuse * 1000 / messages,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runners", default="1,3", help="comma-separated runner counts (default 1,3)")
    parser.add_argument(
        "--storage",
        default="overlay,tmpfs,volume",
        help="comma-separated: overlay (the container's root file system), tmpfs, volume (Docker volumes "
        "for the spool, exim's log and the Maildir), rootfs (Docker volumes for /usr, /etc and /var); "
        "default overlay,tmpfs,volume",
    )
    parser.add_argument(
        "--flavour",
        default="heavy",
        choices=("heavy", "light"),
        help="Debian's exim4-daemon-FLAVOUR (default heavy)",
    )
    parser.add_argument(
        "--rx-as-user",
        action="store_true",
        help="rx delivers as a user of its own (floor), as a primary delivers into its users' mailboxes: "
        "exim must regain root for that, so it executes itself again for every received message",
    )
    parser.add_argument(
        "--tx-one-per-connection",
        action="store_true",
        help="tx's transport carries one message per connection (connection_max_messages = 1): no execution "
        "of exim with -MC per message, a new connection instead",
    )
    parser.add_argument(
        "--rx-queue-runners",
        type=int,
        default=0,
        metavar="N",
        help="rx queues every message and N loops of 'exim4 -q' deliver them (forks as root, no execution of "
        "exim per message); 0 (the default): rx delivers each message at once",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    runner_counts = [int(r) for r in args.runners.split(",")]
    try:
        for storage in args.storage.split(","):
            if storage not in ("overlay", "tmpfs", "volume", "rootfs"):
                parser.error(f"unknown storage {storage!r}")
            rx_user = "floor" if args.rx_as_user else "Debian-exim"
            start(storage, args.flavour, rx_user, args.tx_one_per_connection, args.rx_queue_runners > 0)
            offset = 0
            for runners in runner_counts:
                runs = []
                for k in range(args.repeat):
                    result = one_run(args.messages, runners, args.rx_queue_runners, offset, args.timeout)
                    offset += args.messages
                    log(
                        f"{storage}, {runners} runner(s), run {k + 1}: {result['wall_s']:.1f} s, CPU ms/msg "
                        f"tx {result['tx_cpu_ms']:.1f} rx {result['rx_cpu_ms']:.1f} "
                        f"fuse {result['fuse_cpu_ms']:.1f}"
                    )
                    runs.append(result)
                med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                line = {
                    "storage": storage,
                    "flavour": args.flavour,
                    "rx_as_user": args.rx_as_user,
                    "tx_one_per_connection": args.tx_one_per_connection,
                    "rx_queue_runners": args.rx_queue_runners,
                    "runners": runners,
                    "messages": args.messages,
                    "wall_s": round(med["wall_s"], 2),
                    "msgs_per_s": round(args.messages / med["wall_s"], 1),
                    "tx_cpu_ms": round(med["tx_cpu_ms"], 1),
                    "rx_cpu_ms": round(med["rx_cpu_ms"], 1),
                    "fuse_cpu_ms": round(med["fuse_cpu_ms"], 1),
                    "total_cpu_ms": round(med["tx_cpu_ms"] + med["rx_cpu_ms"] + med["fuse_cpu_ms"], 1),
                }
                print(json.dumps(line), flush=True)
    except RuntimeError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Baton's test-host lab: real Debian hosts (bookworm, trixie) booted with systemd-nspawn.

Each host is a debootstrapped rootfs booted with ``systemd-nspawn -b`` (systemd is PID 1
inside), on a bridge of its own lab with a static 10.77.N.x address, reachable over SSH as
root with the lab key. Nothing is mocked: roles install real packages and run real units.
Every Debian release has its own cached image, built by the same recipe.

    baton_lab.py build [RELEASE ...]        # build (or reuse) the cached rootfs tarballs (default: all)
    baton_lab.py up LAB host1 host2 ...     # boot hosts, write LAB's inventory, print it
    baton_lab.py up LAB h1 h2@trixie        # HOST@RELEASE picks the host's release (default bookworm)
    baton_lab.py down LAB                   # power off hosts, remove everything of LAB
    baton_lab.py run LAB host1 ... -- CMD   # up, run CMD, down (also on failure / Ctrl-C)
    baton_lab.py list

``up`` writes ``<state>/<LAB>/inventory.yml`` (group ``lab``, plus ``ssh_config``) and
``<state>/<LAB>/hosts.json`` (each host's address and release). ``run`` exports BATON_LAB_INVENTORY, BATON_LAB_SSH_CONFIG
and BATON_LAB_DIR to CMD.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("BATON_LAB_CACHE", Path.home() / ".cache" / "baton-lab"))
STATE = Path(os.environ.get("BATON_LAB_STATE", "/var/tmp/baton-lab"))
MIRROR = os.environ.get("BATON_LAB_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("BATON_LAB_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
PACKAGES = "systemd,systemd-sysv,dbus,openssh-server,python3,sudo,curl,iproute2,ca-certificates,procps"
# Packages baked into the cached image so every deploy does not download them again. The roles
# still install them through apt (a no-op when present), so the install path stays tested.
EXTRA_PACKAGES = os.environ.get("BATON_LAB_EXTRA_PACKAGES", "nginx,supervisor,caddy,python3-requests")
RECIPE_VERSION = "3"
# Debian releases the lab can boot (each must be known to the local debootstrap); the first is
# the default for a host named without @RELEASE.
RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = os.environ.get("BATON_LAB_RELEASE", RELEASES[0])
CGROUP_ROOTS = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
SSH_OPTS = [
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3", "-o", "BatchMode=yes",
]


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str] | str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, shell=isinstance(cmd, str), **kw)


def key_path() -> Path:
    key = CACHE / "id_ed25519"
    if not key.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "baton-lab", "-f", str(key)])
    return key


def check_release(release: str) -> str:
    if release not in RELEASES:
        raise SystemExit(f"unknown Debian release {release!r}: the lab knows {', '.join(RELEASES)}")
    return release


def image_path(release: str = DEFAULT_RELEASE) -> Path:
    # The bookworm key leaves out the release, so that the image cached before trixie was added
    # is still found.
    parts = [RECIPE_VERSION, PACKAGES, EXTRA_PACKAGES, MIRROR, SECURITY_MIRROR]
    if release != "bookworm":
        parts.append(release)
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
    return CACHE / f"{release}-{digest}.tar.zst"


def build(release: str = DEFAULT_RELEASE) -> Path:
    """Build the release's rootfs tarball once; later calls reuse the cache (keyed by the recipe)."""
    image = image_path(check_release(release))
    if image.exists():
        return image
    CACHE.mkdir(parents=True, exist_ok=True)
    # Scenarios started side by side may all need a new image: one builds it, the others wait.
    with open(CACHE / f".build-{release}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.exists():
            return image
        return _build(release, image)


def _build(release: str, image: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
    tmp.chmod(0o755)  # mkdtemp makes 0700, which would become the guest's "/" mode
    try:
        log(f"debootstrap {release} into {tmp} (once, ~1 min)")
        sh(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", release, str(tmp), MIRROR],
           stdout=subprocess.DEVNULL)
        (tmp / "etc/apt/sources.list").write_text(
            f"deb {MIRROR} {release} main\n"
            f"deb {MIRROR} {release}-updates main\n"
            f"deb {SECURITY_MIRROR} {release}-security main\n")
        if EXTRA_PACKAGES:
            log(f"baking packages: {EXTRA_PACKAGES}")
            shutil.copy("/etc/resolv.conf", tmp / "etc/resolv.conf")
            # policy-rc.d keeps the packages' postinst from starting services in the chroot.
            policy = tmp / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            sh(["chroot", str(tmp), "apt-get", "update", "-qq"], env=env)
            sh(["chroot", str(tmp), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                *EXTRA_PACKAGES.split(",")], env=env, stdout=subprocess.DEVNULL)
            policy.unlink()
            # A fresh host has no proxy or process manager running: the roles enable what they use.
            for unit in ("nginx", "caddy", "supervisor"):
                sh(["systemctl", f"--root={tmp}", "disable", unit], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (tmp / "etc/machine-id").write_text("")
        for leftover in ("etc/hostname", "etc/resolv.conf"):
            (tmp / leftover).unlink(missing_ok=True)
        sh(["systemctl", f"--root={tmp}", "mask", "systemd-resolved", "systemd-networkd", "apt-daily.timer",
            "apt-daily-upgrade.timer"], check=False, stderr=subprocess.DEVNULL)
        sh(f"rm -rf {tmp}/var/cache/apt/archives/*.deb {tmp}/var/lib/apt/lists/* {tmp}/etc/ssh/ssh_host_*")
        partial = image.with_suffix(".partial")
        sh(f"tar -C {tmp} --numeric-owner -cf - . | zstd -q -T0 -3 -o {partial}")
        partial.rename(image)
        log(f"cached {image} ({image.stat().st_size // 2**20} MB)")
        return image
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lab_dir(lab: str) -> Path:
    return STATE / lab


def free_subnet() -> int:
    """The next free 10.77.N.0/24 after the last one handed out (call under allocating()).

    Going round rather than taking the lowest free one keeps a lab that just went down from
    lending its addresses to the next lab at once: SSH connections still open to the old hosts
    (Ansible's ControlPersist keys them by address) must not reach the new ones."""
    used = set()
    for d in STATE.glob("*/hosts.json"):
        try:
            used.add(json.loads(d.read_text())["subnet"])
        except (ValueError, KeyError):
            continue
    last_file = STATE / ".last-subnet"
    try:
        last = int(last_file.read_text())
    except (OSError, ValueError):
        last = 9
    for n in [10 + (last - 10 + i) % 240 for i in range(1, 241)]:
        if n not in used and not Path(f"/sys/class/net/btn{n}").exists():
            last_file.write_text(f"{n}\n")
            return n
    raise SystemExit("no free 10.77.N.0/24 subnet for a new lab")


def setup_network(n: int) -> None:
    br = f"btn{n}"
    sh(["ip", "link", "add", br, "type", "bridge"])
    sh(["ip", "addr", "add", f"10.77.{n}.1/24", "dev", br])
    sh(["ip", "link", "set", br, "up"])
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    # Masquerade so apt inside the hosts reaches Debian's repository.
    sh(["nft", "-f", "-"], input=(
        f"table ip baton_lab_{n} {{\n"
        f"  chain lab_post {{ type nat hook postrouting priority 100; ip saddr 10.77.{n}.0/24 "
        f"ip daddr != 10.77.{n}.0/24 masquerade; }}\n"
        f"}}\n"), text=True)


def teardown_network(n: int) -> None:
    sh(["ip", "link", "del", f"btn{n}"], check=False, stderr=subprocess.DEVNULL)
    sh(["nft", "delete", "table", "ip", f"baton_lab_{n}"], check=False, stderr=subprocess.DEVNULL)
    if not any(Path("/sys/class/net").glob("btn*")):
        Path("/proc/sys/net/ipv4/ip_forward").write_text("0\n")


def prepare_host(root: Path, image: Path, name: str, addr: str, gateway: str, pubkey: str) -> None:
    root.mkdir(parents=True)
    sh(f"zstd -q -dc {image} | tar -C {root} --numeric-owner -xf -")
    root.chmod(0o755)  # "/" must be world-readable or every non-root service fails (200/CHDIR)
    (root / "etc/hostname").write_text(name + "\n")
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n{addr} {name}\n")
    # A oneshot unit instead of systemd-networkd, which fails here (status=200/CHDIR).
    (root / "etc/systemd/system/lab-net.service").write_text(
        "[Unit]\nDescription=Lab network\nBefore=network.target ssh.service\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"ExecStart=/usr/sbin/ip addr add {addr}/24 dev host0\n"
        "ExecStart=/usr/sbin/ip link set host0 up\n"
        f"ExecStart=/usr/sbin/ip route add default via {gateway}\n\n"
        "[Install]\nWantedBy=multi-user.target\n")
    # dbus-daemon cannot set up inotify in these containers and hangs the boot (and logind
    # with it); systemctl talks to PID 1 over its private socket, so neither is needed.
    for unit in ("dbus.service", "dbus.socket", "systemd-logind.service", "systemd-networkd.socket"):
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "lab-net.service").symlink_to("/etc/systemd/system/lab-net.service")
    ssh = root / "root/.ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text(pubkey)
    sh(["ssh-keygen", "-A", "-f", str(root)], stdout=subprocess.DEVNULL)


def boot_host(lab: str, d: Path, name: str, root: Path, bridge: str) -> None:
    cgroups = []
    for base in CGROUP_ROOTS:
        if Path(base).is_dir():
            cg = Path(base) / "baton-lab" / lab / name
            cg.mkdir(parents=True, exist_ok=True)
            cgroups.append(str(cg / "cgroup.procs"))
    # Own cgroup per host (else all containers share one and collide); restart on exit 133,
    # which is `systemctl reboot` inside the host.
    script = "".join(f"echo $$ > {c}; " for c in cgroups) + (
        f"while :; do systemd-nspawn -q -b -D {root} -M {name} --register=no --keep-unit "
        f"--network-bridge={bridge} --resolv-conf=copy-host --console=read-only "
        f"> {d}/{name}.console 2>&1 & echo $! > {d}/{name}.pid; wait $!; rc=$?; "
        f"[ $rc -eq 133 ] || break; done")
    subprocess.Popen(["setsid", "bash", "-c", script], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ssh_cmd(addr: str, *cmd: str) -> list[str]:
    return ["ssh", "-i", str(key_path()), *SSH_OPTS, f"root@{addr}", *cmd]


def wait_ssh(name: str, addr: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        r = sh(ssh_cmd(addr, "timeout 5 systemctl is-system-running --wait"), check=False,
               capture_output=True, text=True)
        if r.stdout.strip() in ("running", "degraded"):
            if r.stdout.strip() == "degraded":
                failed = sh(ssh_cmd(addr, "systemctl --failed --no-legend --plain"), check=False,
                            capture_output=True, text=True).stdout.strip()
                log(f"{name}: degraded ({failed})")
            return
        time.sleep(0.3)
    raise SystemExit(f"{name} ({addr}) did not become SSH-ready; see {lab_dir('?').parent}/*/{name}.console")


@contextlib.contextmanager
def allocating():
    """Serialise the choice of a subnet (and the first key) between labs started at the same time."""
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def parse_host(spec: str) -> tuple[str, str]:
    """``name`` or ``name@release`` -> (name, release)."""
    name, _, release = spec.partition("@")
    return name, check_release(release or DEFAULT_RELEASE)


def up(lab: str, specs: list[str], timeout: float = 90) -> dict:
    d = lab_dir(lab)
    if d.exists():
        raise SystemExit(f"lab {lab} already exists ({d}); run `baton_lab.py down {lab}` first")
    hosts = [parse_host(spec) for spec in specs]
    images = {release: build(release) for release in dict.fromkeys(r for _, r in hosts)}
    with allocating():
        pubkey = key_path().with_suffix(".pub").read_text()
        d.mkdir(parents=True)
        n = free_subnet()
        meta = {"lab": lab, "subnet": n, "bridge": f"btn{n}", "hosts": {}, "releases": {}}
        (d / "hosts.json").write_text(json.dumps(meta))
    started = time.monotonic()
    try:
        setup_network(n)
        for i, (name, release) in enumerate(hosts):
            addr = f"10.77.{n}.{10 + i}"
            prepare_host(d / name, images[release], name, addr, f"10.77.{n}.1", pubkey)
            meta["hosts"][name] = addr
            meta["releases"][name] = release
            (d / "hosts.json").write_text(json.dumps(meta))
            boot_host(lab, d, name, d / name, meta["bridge"])
        deadline = time.monotonic() + timeout
        for name, addr in meta["hosts"].items():
            wait_ssh(name, addr, deadline)
    except BaseException:
        down(lab)
        raise
    write_inventory(d, meta)
    log(f"lab {lab}: {len(hosts)} host(s) SSH-ready in {time.monotonic() - started:.1f}s: "
        + ", ".join(f"{k}={v} ({meta['releases'][k]})" for k, v in meta["hosts"].items()))
    return meta


def write_inventory(d: Path, meta: dict) -> None:
    key = key_path()
    lines = ["---", "all:", "  children:", "    lab:", "      hosts:"]
    for name, addr in meta["hosts"].items():
        lines += [f"        {name}:", f"          ansible_host: {addr}"]
    lines += ["      vars:", "        ansible_user: root",
              f"        ansible_ssh_private_key_file: {key}",
              "        ansible_ssh_common_args: >-",
              "          -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
              "        ansible_python_interpreter: /usr/bin/python3", ""]
    (d / "inventory.yml").write_text("\n".join(lines))
    cfg = []
    for name, addr in meta["hosts"].items():
        cfg += [f"Host {name} {addr}", f"  HostName {addr}", "  User root", f"  IdentityFile {key}",
                "  StrictHostKeyChecking no", "  UserKnownHostsFile /dev/null", "  LogLevel ERROR", ""]
    (d / "ssh_config").write_text("\n".join(cfg))


def stop_host(d: Path, name: str) -> None:
    pidfile = d / f"{name}.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip() or 0)
    try:
        os.kill(pid, signal.SIGTERM)  # systemd-nspawn: clean poweroff of the host
    except ProcessLookupError:
        return
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def down(lab: str) -> None:
    d = lab_dir(lab)
    if not d.exists():
        return
    try:
        meta = json.loads((d / "hosts.json").read_text())
    except (OSError, ValueError):
        meta = {"hosts": {}, "subnet": None}
    for name in meta["hosts"]:
        stop_host(d, name)
    for base in CGROUP_ROOTS:
        cg = Path(base) / "baton-lab" / lab
        if cg.exists():
            # Remove leaf cgroups first (rmdir only works on empty cgroups).
            for sub in sorted(cg.rglob("*"), key=lambda p: -len(p.parts)):
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
            try:
                cg.rmdir()
            except OSError:
                pass
    if meta.get("subnet") is not None:
        teardown_network(meta["subnet"])
    shutil.rmtree(d, ignore_errors=True)
    log(f"lab {lab}: down")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pb = sub.add_parser("build")
    pb.add_argument("releases", nargs="*", default=list(RELEASES), help=f"any of {', '.join(RELEASES)} (default: all)")
    sub.add_parser("list")
    pu = sub.add_parser("up")
    pu.add_argument("lab")
    pu.add_argument("hosts", nargs="+", help="HOST or HOST@RELEASE")
    pd = sub.add_parser("down")
    pd.add_argument("lab")
    pr = sub.add_parser("run")
    pr.add_argument("lab")
    pr.add_argument("rest", nargs=argparse.REMAINDER, help="host[@release] ... -- command ...")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the lab needs root (debootstrap, systemd-nspawn, bridges)")
    if a.cmd == "build":
        with allocating():
            key_path()
        for release in a.releases:
            print(build(release))
    elif a.cmd == "list":
        for f in sorted(STATE.glob("*/hosts.json")):
            print(f.parent.name, json.loads(f.read_text())["hosts"])
    elif a.cmd == "up":
        up(a.lab, a.hosts)
        print(lab_dir(a.lab) / "inventory.yml")
    elif a.cmd == "down":
        down(a.lab)
    elif a.cmd == "run":
        if "--" not in a.rest:
            raise SystemExit("usage: baton_lab.py run LAB host ... -- command ...")
        i = a.rest.index("--")
        hosts, cmd = a.rest[:i], a.rest[i + 1:]
        # Tear down on SIGTERM too (SIGINT already raises KeyboardInterrupt).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            up(a.lab, hosts)
            d = lab_dir(a.lab)
            env = dict(os.environ, BATON_LAB_INVENTORY=str(d / "inventory.yml"),
                       BATON_LAB_SSH_CONFIG=str(d / "ssh_config"), BATON_LAB_DIR=str(d))
            return subprocess.call(cmd, env=env)
        finally:
            down(a.lab)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

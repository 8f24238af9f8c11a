"""One host's life: overlay over the base, identity and simulated hardware, boot, readiness, stop.

Example:
    mount_overlay(host, base); seed_host(host, pubkey); boot(host)
    wait_ready(host, timeout=30)     # sshd answers and `systemctl is-system-running` says running
    stop(host); unmount_overlay(host)
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import tls
from .layout import PROJECT_ROOT, Host, TestbedError

HARDWARE_DIR = PROJECT_ROOT / "testbed" / "hardware"


def is_mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def mount_overlay(host: Host, base: Path) -> None:
    for d in (host.upper, host.dir / "work", host.root):
        d.mkdir(parents=True, exist_ok=True)
    if is_mounted(host.root):
        return
    opts = f"lowerdir={base},upperdir={host.upper},workdir={host.dir / 'work'}"
    p = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(host.root)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise TestbedError(f"host {host.name}: overlay mount failed: {p.stderr.strip()}")


def unmount_overlay(host: Host) -> None:
    if is_mounted(host.root):
        subprocess.run(["umount", str(host.root)], check=False)
        if is_mounted(host.root):  # still busy (a process lingers): detach lazily
            subprocess.run(["umount", "-l", str(host.root)], check=False)


def seed_host(host: Host, authorized_key: str) -> str:
    """Write the host's identity and simulated hardware into its overlay; return its host key line.

    Runs on every boot; only writes what is missing, so a host keeps its state across restarts."""
    root = host.root
    _write(root / "etc/hostname", host.name + "\n")
    # Minbase has no /etc/hosts; name resolution of the host's own name must work (sudo, Ollama).
    # The default registry's name (and the blob host it redirects to) lead to the testbed's mirror.
    # The site registries resolve by name, as a site's DNS would answer for them.
    site = "".join(f"{r.ip}\t{r.name}\n" for r in host.testbed.registry_hosts if r is not host)
    _write(root / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n::1\tlocalhost ip6-localhost\n"
                               f"{host.testbed.gateway}\t{tls.REGISTRY_HOST} {tls.BLOB_HOST}\n{site}")
    _trust_testbed_ca(host)
    # The site's apt proxy (the hosts have no route out); the sources are debootstrap's own.
    _write(root / "etc/apt/apt.conf.d/00ollama-testbed-proxy", f'Acquire::http::Proxy "{host.testbed.apt_proxy}";\n')
    if not (root / "etc/machine-id").read_text().strip():
        _write(root / "etc/machine-id", secrets.token_hex(16) + "\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(ssh_dir / "authorized_keys", authorized_key.strip() + "\n", mode=0o600)
    hostkey = root / "etc/ssh/ssh_host_ed25519_key"
    if not hostkey.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}",
                        "-f", str(hostkey)], check=True)
    _install_hardware(host)
    return " ".join(hostkey.with_suffix(".pub").read_text().split()[:2])


def _trust_testbed_ca(host: Host) -> None:
    """Put the testbed CA in the host's trust store, as a site adds its own CA (Go reads the bundle)."""
    ca = tls.ensure_registry_cert(host.testbed.state_dir / "tls")["ca"]
    dest = host.root / "usr/local/share/ca-certificates/ollama-testbed-ca.crt"
    if dest.exists() and dest.read_bytes() == ca.read_bytes():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca, dest)
    # A bare base has no ca-certificates yet: its install (by the deploy) takes the CA in then.
    if (host.root / "usr/sbin/update-ca-certificates").exists():
        subprocess.run(["chroot", str(host.root), "update-ca-certificates", "--fresh"], check=True,
                       capture_output=True)


def _install_hardware(host: Host) -> None:
    """GPU profiles get the replaying nvidia-smi and the groups a real driver install creates."""
    recording = HARDWARE_DIR / "profiles" / host.profile / "gpus.json"
    if not recording.exists():
        return
    root = host.root
    share = root / "usr/local/share/nvidia-smi-replay"
    share.mkdir(parents=True, exist_ok=True)
    for f in recording.parent.iterdir():
        if f.suffix in (".json", ".txt"):
            shutil.copy2(f, share / f.name)
    dest = root / "usr/local/bin/nvidia-smi"
    shutil.copy2(HARDWARE_DIR / "nvidia_smi_replay.py", dest)
    dest.chmod(0o755)
    if "\nrender:" not in "\n" + (root / "etc/group").read_text():
        subprocess.run(["chroot", str(root), "groupadd", "--system", "render"], check=True)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    path.chmod(mode)


def _systemd_cgroup_roots() -> list[Path]:
    """Mount points of the hierarchies a container's systemd manages: cgroup2 and v1 name=systemd."""
    roots = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, where, fstype, opts = line.split()[:4]
            if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in opts.split(",")):
                roots.append(Path(where))
    return roots


def host_cgroups(host: Host) -> list[Path]:
    return [root / "ollama-testbed" / host.machine for root in _systemd_cgroup_roots()]


def testbed_cgroups(testbed_name: str) -> list[Path]:
    """Every host cgroup of a testbed, also of hosts beyond its current size."""
    return sorted(d for root in _systemd_cgroup_roots() for d in (root / "ollama-testbed").glob(f"{testbed_name}-*"))


def remove_cgroup_tree(top: Path) -> None:
    """Remove a cgroup and the groups the container's systemd made in it, deepest first
    (rmdir only works on empty groups; the processes must be gone)."""
    if top.exists():
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            d.rmdir()
        top.rmdir()


INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances"
INOTIFY_PER_HOST = 32  # a booted Debian 12 systemd with sshd, journald and Ollama holds about 10-15


def ensure_inotify_room(hosts: int) -> None:
    """Raise the inotify instance limit (all containers run as root, so share root's: the default
    128 runs out near 20 hosts, and a host's systemd then exits with "Failed to allocate manager
    object: Too many open files") to room for `hosts` more; never lowered."""
    have = int(Path(INOTIFY_INSTANCES).read_text())
    running = len(list(Path("/run/systemd/nspawn/propagate").glob("*")))  # one entry per running container
    want = 128 + INOTIFY_PER_HOST * (hosts + running)
    if want > have:
        Path(INOTIFY_INSTANCES).write_text(str(want))


def boot(host: Host) -> int:
    """Start systemd-nspawn -b in the host's namespace and its own cgroups; return nspawn's pid.

    With --keep-unit nspawn stays in the caller's cgroup, and the container's systemd manages that
    cgroup as its root. Without a cgroup of its own per host, every container's systemd would
    manage the same /system.slice/...: one host stopping ssh.service would kill the others' sshd,
    and concurrent boots race (status=219/CGROUP)."""
    cgroups = host_cgroups(host)
    for d in cgroups:
        d.mkdir(parents=True, exist_ok=True)

    def enter_cgroups():
        for d in cgroups:
            (d / "cgroup.procs").write_text("0")

    log = open(host.console_log, "ab")
    cmd = ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet", "-b",
           "-D", str(host.root), f"--machine={host.machine}", f"--hostname={host.name}",
           f"--network-namespace-path=/run/netns/{host.netns}", "--console=read-only",
           # The namespace is the host's own, so it may manage its firewall (nftables) like a real one.
           "--capability=CAP_NET_ADMIN"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            preexec_fn=enter_cgroups)
    (host.dir / "nspawn.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def find_pids(needle: str) -> list[int]:
    """Processes whose command line contains `needle` (argv joined by spaces, with a trailing space)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def nspawn_pid(host: Host) -> int | None:
    """The running nspawn of this host, found by its command line (survives a lost pid file)."""
    pids = find_pids(f"--machine={host.machine} ")
    return pids[0] if pids else None


def wait_ready(host: Host, ssh_config: Path, timeout: float) -> float:
    """Wait until sshd answers and systemd reports `running`; return seconds waited."""
    start = time.monotonic()
    deadline = start + timeout
    while not port_open(host.ip, 22):
        if nspawn_pid(host) is None:
            raise TestbedError(f"host {host.name}: systemd-nspawn exited during boot; log: {host.console_log}")
        if time.monotonic() > deadline:
            raise TestbedError(f"host {host.name}: sshd did not answer on {host.ip}:22 within {timeout:.0f}s; "
                               f"log: {host.console_log}")
        time.sleep(0.05)
    remaining = max(1.0, deadline - time.monotonic())
    p = subprocess.run(["ssh", "-F", str(ssh_config), host.name,
                        f"timeout {remaining:.0f} systemctl is-system-running --wait"],
                       capture_output=True, text=True, timeout=remaining + 10)
    state = p.stdout.strip() or p.stderr.strip()
    if state != "running":
        failed = subprocess.run(["ssh", "-F", str(ssh_config), host.name,
                                 "systemctl --failed --no-legend --plain | cut -d' ' -f1 | xargs"],
                                capture_output=True, text=True).stdout.strip()
        raise TestbedError(f"host {host.name}: systemd is {state or 'unreachable over ssh'!s}"
                           f"{' (failed: ' + failed + ')' if failed else ''}; log: {host.console_log}")
    return time.monotonic() - start


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_daemon(argv: list[str], log: Path, address: str, ports: tuple[int, ...], what: str,
                 cwd: Path | None = None, timeout: float = 10) -> None:
    """Start a testbed daemon in a session of its own, its output appended to `log`, and wait until it
    listens on each of `ports` at `address`; else TestbedError: "<what> did not listen ...; log: ..."."""
    out = open(log, "ab")
    subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not all(port_open(address, port) for port in ports):
        if time.monotonic() > deadline:
            raise TestbedError(f"{what} did not listen on {address} port {', '.join(map(str, ports))}; log: {log}")
        time.sleep(0.05)


def stop(host: Host, timeout: float = 15) -> None:
    """Orderly shutdown (nspawn turns SIGTERM into the container's poweroff), then force."""
    pid = nspawn_pid(host)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def host_processes(host: Host) -> list[int]:
    """Pids of every process inside the host (same pid namespace as its PID 1)."""
    pid = nspawn_pid(host)
    if pid is None:
        return []
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if not children:
        return []
    ns = os.readlink(f"/proc/{children[0]}/ns/pid")
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "ns/pid") == ns:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def hardware_description(profile: str) -> dict:
    path = HARDWARE_DIR / "profiles" / profile / "hardware.json"
    return json.loads(path.read_text()) if path.exists() else {}

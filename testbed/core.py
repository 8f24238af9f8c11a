"""Bring a testbed up, report on it, tear it down. `up` and `down` are idempotent.

Example:
    tb = Testbed.named("tb", hosts=3)
    report = up(tb)          # boots missing hosts, starts the mirror, writes inventory + ssh config
    status(tb); down(tb)     # down removes every container, mount, namespace, link and process
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ollama_deploy.control.release import parse_sums
from ollama_deploy.gocompat import OLLAMA_VERSION

from . import aptproxy, container, inventory, network, real_ollama, rootfs, tls
from .layout import CACHE_ROOT, MIRROR_PORT, PROJECT_ROOT, STATE_ROOT, Testbed, TestbedError
from .models import publish_models
from .real_models import publish_real_models
from .release import publish_release


def _mirror_needle(tb: Testbed) -> str:
    return f"testbed.mirror --root {tb.mirror_root} "


def ensure_mirror(tb: Testbed, log=print) -> dict[str, dict[str, str]]:
    """Publish the releases and the test models, and serve them on the bridge address.

    Returns {"double": {file: sha256}, "real": {file: sha256}} ("real" only when a profile runs it)."""
    sums = {"double": publish_release(tb.mirror_root / "double/releases/download", OLLAMA_VERSION, tb.mirror_url)}
    if "real" in {tb.ollama_kind(h.profile) for h in tb.hosts}:
        sums["real"] = _publish_real_release(tb, real_ollama.ensure_built(log=log))
    publish_models(tb.mirror_root)
    publish_real_models(tb.mirror_root)
    if not container.find_pids(_mirror_needle(tb)):
        cert = tls.ensure_registry_cert(tb.state_dir / "tls")
        container.start_daemon(
            [sys.executable, "-m", "testbed.mirror", "--root", str(tb.mirror_root), "--bind", tb.gateway,
             "--port", str(MIRROR_PORT), "--access-log", str(tb.state_dir / "mirror-access.log"),
             "--tls-port", "443", "--tls-cert", str(cert["cert"]), "--tls-key", str(cert["key"]),
             "--blob-host", f"http://{tls.BLOB_HOST}:{MIRROR_PORT}"],
            tb.state_dir / "mirror.log", tb.gateway, (MIRROR_PORT, 443), f"testbed {tb.name}: the mirror",
            cwd=PROJECT_ROOT)
    return sums


def _publish_real_release(tb: Testbed, built: Path) -> dict[str, str]:
    """Serve the real build at the official release path (what the deploy installs on real-Ollama hosts)."""
    out = tb.mirror_root / "ollama/releases/download" / f"v{OLLAMA_VERSION}"
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "sha256sum.txt").exists() or (out / "sha256sum.txt").read_text() != \
            (built / "sha256sum.txt").read_text():
        for name in (real_ollama.ARTIFACT, "sha256sum.txt"):
            shutil.copyfile(built / name, out / f".{name}.tmp")
            (out / f".{name}.tmp").replace(out / name)
    return parse_sums((out / "sha256sum.txt").read_text())


def _recorded(name: str) -> dict | None:
    state = STATE_ROOT / name / "state.json"
    return json.loads(state.read_text()) if state.exists() else None


def recorded_host_count(name: str) -> int | None:
    """How many hosts testbed `name` was brought up with, or None if it is not up."""
    was = _recorded(name)
    return was["host_count"] if was else None


def recorded_site_registries(name: str) -> int | None:
    """How many site registry hosts testbed `name` was brought up with, or None if it is not up."""
    was = _recorded(name)
    return was.get("site_registries", 0) if was else None


def _check_size(tb: Testbed) -> None:
    was = _recorded(tb.name)
    asked = {"host_count": tb.host_count, "site_registries": len(tb.registry_hosts)}
    if was is not None and {"site_registries": 0, **was} != asked:
        raise TestbedError(f"testbed {tb.name} has {was['host_count']} hosts and {was.get('site_registries', 0)} "
                           f"site registries, asked for {tb.host_count} and {len(tb.registry_hosts)}: "
                           f"run `python3 -m testbed down --name {tb.name}` first")


def up(tb: Testbed, boot_timeout: float = 45, cache_root: Path = CACHE_ROOT, log=print) -> dict:
    """Boot every host that is not running; returns {"hosts": [...], "seconds": ...}."""
    started = time.monotonic()
    _check_size(tb)
    base = rootfs.ensure_base(cache_root, log=log, base=tb.base)
    tb.state_dir.mkdir(parents=True, exist_ok=True)
    pubkey = inventory.ensure_client_key(tb)
    network.ensure_bridge(tb)
    network.ensure_site_names(tb)
    sums = ensure_mirror(tb, log=log)
    aptproxy.ensure(tb, cache_root)
    host_keys, to_boot = {}, []
    for h in tb.machines:
        running = container.nspawn_pid(h) is not None
        if not running:
            network.ensure_host_netns(h)
            container.mount_overlay(h, base)
        host_keys[h.name] = container.seed_host(h, pubkey) if not running else \
            " ".join((h.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])
        if not running:
            to_boot.append(h)
    inventory.write_ssh_files(tb, host_keys)
    container.ensure_inotify_room(len(to_boot))
    for h in to_boot:
        container.boot(h)
    with ThreadPoolExecutor(max_workers=min(16, len(tb.machines))) as pool:
        futures = {h.name: pool.submit(container.wait_ready, h, tb.ssh_config, boot_timeout) for h in tb.machines}
    errors, ready = [], {}
    for name, fut in futures.items():
        try:
            ready[name] = fut.result()
        except (TestbedError, subprocess.TimeoutExpired) as e:
            errors.append(str(e) if isinstance(e, TestbedError) else
                          f"host {name}: ssh timed out; log: {tb.host(name).console_log}")
    (tb.state_dir / "state.json").write_text(json.dumps({"host_count": tb.host_count,
                                                         "site_registries": len(tb.registry_hosts)}))
    inventory.write_inventory(tb, sums)
    if errors:
        raise TestbedError("\n".join(errors))
    booted = {h.name for h in to_boot}
    return {"seconds": time.monotonic() - started,
            "hosts": [{"name": h.name, "profile": h.profile, "ip": h.ip,
                       "booted": h.name in booted, "ready_after_s": round(ready[h.name], 2)} for h in tb.machines]}


def status(tb: Testbed) -> list[dict]:
    rows = []
    for h in tb.machines:
        pid = container.nspawn_pid(h)
        state = "stopped"
        if pid:
            p = subprocess.run(["ssh", "-F", str(tb.ssh_config), h.name, "systemctl is-system-running"],
                               capture_output=True, text=True, timeout=15)
            state = p.stdout.strip() or f"unreachable ({p.stderr.strip()[:60]})"
        rows.append({"name": h.name, "profile": h.profile, "ip": h.ip, "pid": pid, "state": state})
    return rows


def stop_host(tb: Testbed, name: str) -> None:
    """Shut one host down, keeping its disk (overlay upper) for the next `up`."""
    h = tb.host(name)
    container.stop(h)
    container.unmount_overlay(h)
    for cgroup in container.host_cgroups(h):
        container.remove_cgroup_tree(cgroup)


def down(tb: Testbed) -> list[str]:
    """Remove everything the testbed made; return what is still left (empty when clean)."""
    for pid in container.find_pids(f"--machine={tb.name}-"):
        subprocess.run(["kill", "-TERM", str(pid)], check=False)
    deadline = time.monotonic() + 15
    while container.find_pids(f"--machine={tb.name}-") and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in (container.find_pids(f"--machine={tb.name}-") + container.find_pids(_mirror_needle(tb))
                + container.find_pids(aptproxy.needle(tb))):
        subprocess.run(["kill", "-KILL", str(pid)], check=False)
    hosts_dir = tb.state_dir / "hosts"
    for root in sorted(hosts_dir.glob("*/root")) if hosts_dir.exists() else []:
        if container.is_mounted(root):
            subprocess.run(["umount", "-l", str(root)], check=False)
    for cgroup in container.testbed_cgroups(tb.name):
        container.remove_cgroup_tree(cgroup)
    for ns in network.testbed_namespaces(tb):
        subprocess.run(["ip", "netns", "del", ns], check=False)
    network.remove_bridge(tb)
    network.remove_site_names(tb)
    shutil.rmtree(tb.state_dir, ignore_errors=True)
    tb.inventory_path.unlink(missing_ok=True)
    return leftovers(tb)


def leftovers(tb: Testbed) -> list[str]:
    """Anything of this testbed that still exists: processes, mounts, namespaces, links, files."""
    pids = (container.find_pids(f"--machine={tb.name}-") + container.find_pids(_mirror_needle(tb))
            + container.find_pids(aptproxy.needle(tb)))
    left = [f"process {p}" for p in pids]
    with open("/proc/self/mounts") as mounts:
        left += [f"mount {line.split()[1]}" for line in mounts if f" {tb.state_dir}/" in line]
    left += [f"netns {ns}" for ns in network.testbed_namespaces(tb)]
    left += [f"cgroup {d}" for d in container.testbed_cgroups(tb.name)]
    if subprocess.run(["ip", "link", "show", tb.bridge], capture_output=True).returncode == 0:
        left.append(f"link {tb.bridge}")
    if network.has_site_names(tb):
        left.append(f"{network.HOSTS_FILE} block for {tb.name}")
    left += [f"path {p}" for p in (tb.state_dir, tb.inventory_path) if p.exists()]
    return left

"""The cached base rootfs every testbed host boots from (read-only lower layer of its overlay).

Built once with debootstrap from the Debian mirror this machine's apt already uses (read from
its apt sources at run time, never hard-coded), then reused: a host costs only its overlay.

Example:
    base = ensure_base()          # ~50 s the first time, instant afterwards
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path

from .layout import CACHE_ROOT, TestbedError

SUITE = "bookworm"  # the suite of this machine's own apt sources, whose mirror every base uses
# What each base image holds. "full" is what most tests run on: the test double needs python3 and
# the GPU replay too; it also has what the deploy installs itself (curl, zstd, ...). "bare" and
# "trixie" (Debian 13) are minimal hosts, systemd and sshd only: the deploy must install the rest.
BARE = ("systemd", "systemd-sysv", "dbus", "openssh-server")
BASES = {"full": ("bookworm", BARE + ("python3", "iproute2", "curl", "ca-certificates", "sudo", "zstd", "nftables")),
         "bare": ("bookworm", BARE), "trixie": ("trixie", BARE)}
PACKAGES = BASES["full"][1]
# Bump when the preparation below changes, so stale caches are rebuilt rather than reused.
PREPARE_REVISION = "3"


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror URI of this machine's apt configuration (deb822 or one-line format)."""
    candidates = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in candidates:
        text = path.read_text()
        for stanza in text.split("\n\n"):
            if re.search(r"^Suites:.*\b" + SUITE + r"\b", stanza, re.M) and "Enabled: no" not in stanza:
                m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if m and "security" not in m.group(1):
                    return m.group(1)
    for path in [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[-3]:
                    uri = next(p for p in parts[1:] if "://" in p)
                    return uri
    raise TestbedError(f"no Debian mirror found in {sources_dir}/sources.list(.d): cannot debootstrap")


def cache_key(base: str = "full") -> str:
    suite, packages = BASES[base]
    return hashlib.sha256(f"{suite}:{','.join(packages)}:{PREPARE_REVISION}".encode()).hexdigest()[:12]


def base_path(cache_root: Path = CACHE_ROOT, base: str = "full") -> Path:
    return cache_root / f"base-{BASES[base][0]}-{cache_key(base)}"


def ensure_base(cache_root: Path = CACHE_ROOT, log=print, base: str = "full") -> Path:
    """Return the cached base rootfs, building it first if missing. Safe to call concurrently-ish:
    the build goes to a temporary directory renamed into place only when complete."""
    suite, packages = BASES[base]
    final = base_path(cache_root, base)
    if (final / ".testbed-base-ready").exists():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = cache_root / f".building-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    mirror = apt_mirror()
    log(f"building base rootfs {final.name} with debootstrap (first run only, about a minute)")
    started = time.monotonic()
    logfile = cache_root / f"{final.name}.debootstrap.log"
    with open(logfile, "w") as out:
        rc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(tmp), mirror],
            stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise TestbedError(f"base rootfs: debootstrap exited {rc}; log: {logfile}")
    _prepare(tmp)
    (tmp / ".testbed-base-ready").write_text(f"built in {time.monotonic() - started:.1f}s from {mirror}\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _prepare(root: Path) -> None:
    """Make the base host-neutral: each host gets its own identity in its overlay at boot."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # shared host keys would make every host the same to SSH
    for f in ("etc/hostname", "etc/machine-id"):
        (root / f).unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")  # empty: systemd generates one per boot until written
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/testbed.conf").write_text(
        "# ollama-deploy testbed: key auth only, one host key per host (written at boot)\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUseDNS no\n")
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)

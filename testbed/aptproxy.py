"""The testbed's apt proxy: Debian's apt-cacher-ng on the bridge address, as a site's hosts reach
their Debian mirror through a proxy. The hosts have no route out; their apt goes through this
proxy to the mirror named in their own sources (debootstrap writes this machine's mirror there),
and what it fetched is cached across testbeds and runs.

Example:
    ensure(tb)                  # running and listening on tb.apt_proxy
    container.find_pids(needle(tb))
"""
from __future__ import annotations

import shutil
from pathlib import Path

from . import container
from .layout import APT_PROXY_PORT, CACHE_ROOT, Testbed, TestbedError

BINARY = "/usr/sbin/apt-cacher-ng"


def needle(tb: Testbed) -> str:
    return f"{BINARY} -c {tb.state_dir / 'apt-proxy'} "


def _config(tb: Testbed, cache: Path) -> Path:
    """A config of its own (no Remap lines: requests go to the host they name), on the bridge only."""
    conf = tb.state_dir / "apt-proxy"
    (conf / "log").mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(
        f"CacheDir: {cache}\nLogDir: {conf / 'log'}\nSupportDir: /usr/lib/apt-cacher-ng\n"
        f"Port: {APT_PROXY_PORT}\nBindAddress: {tb.gateway}\nPidFile: {conf / 'pid'}\n"
        f"SocketPath: {conf / 'socket'}\nExThreshold: 4\n")
    return conf


def ensure(tb: Testbed, cache_root: Path = CACHE_ROOT) -> None:
    if container.find_pids(needle(tb)):
        return
    if not shutil.which(BINARY):
        raise TestbedError(f"testbed {tb.name}: {BINARY} is missing (scripts/bootstrap installs apt-cacher-ng)")
    conf = _config(tb, cache_root / "apt-proxy")
    container.start_daemon([BINARY, "-c", str(conf), "ForeGround=1"], conf / "console.log", tb.gateway,
                           (APT_PROXY_PORT,), f"testbed {tb.name}: the apt proxy")

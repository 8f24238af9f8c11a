"""Testbed benchmark (not a test): cold base build, bring-up of 1 and 8 hosts from cache, memory per host.

Run as root:  .venv/bin/python -m bench.boot [--skip-cold]
Uses its own testbeds ("bench1", "bench8") and, for the cold build, a throw-away cache directory,
so neither the default testbed nor the shared cache is touched.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from testbed import container, core, rootfs
from testbed.layout import Testbed


def _mem_available_mib() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _pss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def _bring_up(name: str, hosts: int, quiet=lambda *_: None) -> tuple[float, Testbed]:
    tb = Testbed.named(name, hosts=hosts)
    core.down(tb)
    started = time.monotonic()
    core.up(tb, log=quiet)
    return time.monotonic() - started, tb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-cold", action="store_true", help="skip the cold debootstrap (about a minute)")
    args = ap.parse_args(argv)
    if not args.skip_cold:
        cache = Path(tempfile.mkdtemp(prefix="testbed-cold-"))
        try:
            started = time.monotonic()
            rootfs.ensure_base(cache, log=lambda *_: None)
            print(f"cold base build (debootstrap + prepare):      {time.monotonic() - started:6.1f} s")
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    rootfs.ensure_base(log=print)
    one, tb1 = _bring_up("bench1", 1)
    print(f"1 host up from cache (boot to running + ssh):  {one:6.1f} s")
    core.down(tb1)
    before = _mem_available_mib()
    eight, tb8 = _bring_up("bench8", 8)
    time.sleep(2)  # let boot-time transients finish before measuring memory
    used = before - _mem_available_mib()
    pss = [_pss_mib(container.host_processes(h)) for h in tb8.hosts]
    print(f"8 hosts up from cache:                         {eight:6.1f} s  (target < 60 s; "
          f"{eight / one:.2f}x the 1-host time)")
    print(f"memory per host: {used / 8:6.1f} MiB by MemAvailable drop, "
          f"{sum(pss) / 8:6.1f} MiB PSS of its processes (min {min(pss):.1f}, max {max(pss):.1f})")
    upper = sum(f.stat().st_size for h in tb8.hosts for f in h.upper.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"disk per host (overlay upper):                 {upper / 8 / 1024:6.1f} KiB")
    core.down(tb8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

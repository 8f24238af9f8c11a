"""Fleet benchmark (not a test): converge 1 and 8 testbed hosts (fresh, then a no-op rerun) with the
fleet cache, 8 hosts without it, and the bytes the mirror served for blobs and release tarballs.
Figures and ratios are measured in this one run, with the CPU time the machine spent on each
converge: testbed hosts share this machine's cores with the control node, so a fleet converge here
is bound by CPU long before it is bound by the deploy's own waiting.

Run as root:  .venv/bin/python -m bench.fleet
Uses its own testbeds ("fleet1", "fleet8") and throw-away cache directories.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testbed import core
from testbed.deployrun import run_deploy
from testbed.layout import Testbed

RANGE_PROBE = 2 * 2**20  # the memory budget's first Range read of a model blob
MIB = 2**20


def machine() -> str:
    mem_gib = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal:"))) / 2**20
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU")
    return f"{os.cpu_count()} cores ({model}), {mem_gib:.0f} GiB RAM"


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent not idle since boot (all cores)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def mirror_bytes(tb: Testbed) -> tuple[int, int]:
    """(bytes the mirror sent for blobs and release tarballs, size of one copy of each file it sent),
    from its access log and its files."""
    total, files = 0, {}
    for line in (tb.state_dir / "mirror-access.log").read_text().splitlines():
        m = re.search(r" GET (\S+) (200|206)", line)
        if m and ("/blobs/" in m.group(1) or m.group(1).endswith(".tar.zst")):
            size = (tb.mirror_root / m.group(1).lstrip("/")).stat().st_size
            total += size if m.group(2) == "200" else min(size, RANGE_PROBE)
            files[m.group(1)] = size
    return total, sum(files.values())


def settled(tb: Testbed) -> None:
    """Wait until every host has finished booting (sshd answers before systemd is done), so the
    converge is not measured against the tail of the boot."""
    waits = [subprocess.Popen(["ssh", "-F", str(tb.ssh_config), h.name, "systemctl is-system-running --wait"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for h in tb.hosts]
    for wait in waits:
        wait.wait(timeout=120)


@dataclass
class Converge:
    fresh_s: float
    fresh_cpu_s: float
    noop_s: float
    changes: int
    mirror_bytes: int
    one_copy_bytes: int  # each distinct blob and tarball once


def converge(name: str, hosts: int, extra: list[str]) -> Converge:
    tb = Testbed.named(name, hosts=hosts)
    core.down(tb)
    core.up(tb, log=lambda *_: None)
    try:
        settled(tb)
        cpu = busy_cpu_seconds()
        fresh = run_deploy(tb.inventory_path, *extra)
        cpu = busy_cpu_seconds() - cpu
        if fresh.rc != 0:
            raise SystemExit(f"deploy to {name} failed:\n{fresh.stderr[-2000:]}")
        served, one_copy = mirror_bytes(tb)
        noop = run_deploy(tb.inventory_path, *extra)
        return Converge(fresh.seconds, cpu, noop.seconds, len(noop.changed_ops()), served, one_copy)
    finally:
        core.down(tb)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fleet-cache-") as cache:
        def cached(d):
            return ["--data", "ollama_fleet_cache=true", "--data", f"ollama_fleet_cache_dir={Path(cache) / d}"]
        one = converge("fleet1", 1, cached("one"))
        eight = converge("fleet8", 8, cached("eight"))
    direct = converge("fleet8", 8, [])
    cores = os.cpu_count() or 1
    print(f"machine: {machine()}")
    print(f"converge 1 host  (fleet cache): fresh {one.fresh_s:5.1f} s ({one.fresh_cpu_s:4.1f} CPU-s), "
          f"no-op {one.noop_s:4.1f} s, {one.changes} changes")
    print(f"converge 8 hosts (fleet cache): fresh {eight.fresh_s:5.1f} s ({eight.fresh_cpu_s:4.1f} CPU-s) = "
          f"{eight.fresh_s / one.fresh_s:.2f}x 1 host (target <= 1.5x); no-op {eight.noop_s:4.1f} s = "
          f"{eight.noop_s / 8:.2f} s per host (target <= 3), {eight.changes} changes")
    print(f"  CPU: 8 hosts needed {eight.fresh_cpu_s / one.fresh_cpu_s:.1f}x the CPU time of 1; on {cores} cores "
          f"that alone takes >= {eight.fresh_cpu_s / cores:.1f} s, and the machine was busy "
          f"{eight.fresh_cpu_s / (cores * eight.fresh_s):.0%} of the converge")
    print(f"converge 8 hosts (no cache):    fresh {direct.fresh_s:5.1f} s, no-op {direct.noop_s:4.1f} s, "
          f"{direct.changes} changes")
    print(f"mirror bytes for 8 hosts: {eight.mirror_bytes / MIB:.1f} MiB with the fleet cache "
          f"({eight.mirror_bytes / eight.one_copy_bytes:.2f}x one copy of each model and artifact; target 1x), "
          f"{direct.mirror_bytes / MIB:.1f} MiB without ({direct.mirror_bytes / direct.one_copy_bytes:.1f}x)")
    return 0 if eight.changes == one.changes == direct.changes == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

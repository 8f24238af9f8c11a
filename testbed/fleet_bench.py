"""Fleet benchmark (not a test): converge 1 and 8 hosts (fresh and no-op), and bytes served by the
mirror for 8 hosts with and without the fleet cache. Figures measured in this one run.

Run as root:  .venv/bin/python -m testbed.fleet_bench
Uses its own testbeds ("fleet1", "fleet8") and a throw-away cache directory.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from . import core
from .deployrun import run_deploy
from .layout import Testbed

RANGE_PROBE = 2 * 2**20  # the memory budget's first Range read of a model blob


def mirror_bytes(tb: Testbed, since_line: int = 0) -> int:
    """Bytes the mirror sent for blobs and release tarballs, from its access log and its files."""
    total = 0
    for line in (tb.state_dir / "mirror-access.log").read_text().splitlines()[since_line:]:
        m = re.search(r" GET (\S+) (200|206)", line)
        if m and ("/blobs/" in m.group(1) or m.group(1).endswith(".tar.zst")):
            size = (tb.mirror_root / m.group(1).lstrip("/")).stat().st_size
            total += size if m.group(2) == "200" else min(size, RANGE_PROBE)
    return total


def converge(name: str, hosts: int, extra: list[str]) -> dict:
    tb = Testbed.named(name, hosts=hosts)
    core.down(tb)
    core.up(tb, log=lambda *_: None)
    try:
        fresh = run_deploy(tb.inventory_path, *extra)
        if fresh.rc != 0:
            raise SystemExit(f"deploy to {name} failed:\n{fresh.stderr[-2000:]}")
        served = mirror_bytes(tb)
        noop = run_deploy(tb.inventory_path, *extra)
        return {"fresh_s": fresh.seconds, "noop_s": noop.seconds, "changes": len(noop.changed_ops()),
                "mirror_bytes": served}
    finally:
        core.down(tb)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fleet-cache-") as cache:
        cached = ["--data", "ollama_fleet_cache=true", "--data", f"ollama_fleet_cache_dir={Path(cache) / 'one'}"]
        one = converge("fleet1", 1, cached)
        cached[-1] = f"ollama_fleet_cache_dir={Path(cache) / 'eight'}"
        eight = converge("fleet8", 8, cached)
    direct = converge("fleet8", 8, [])
    mib = 2**20
    print(f"converge 1 host  (fleet cache): fresh {one['fresh_s']:5.1f} s, no-op {one['noop_s']:4.1f} s, "
          f"{one['changes']} changes")
    print(f"converge 8 hosts (fleet cache): fresh {eight['fresh_s']:5.1f} s ({eight['fresh_s'] / one['fresh_s']:.2f}x "
          f"1 host; target <= 1.5x), no-op {eight['noop_s']:4.1f} s ({eight['noop_s'] / 8:.2f} s per host; "
          f"target <= 3), {eight['changes']} changes")
    print(f"converge 8 hosts (no cache):    fresh {direct['fresh_s']:5.1f} s, no-op {direct['noop_s']:4.1f} s")
    print(f"mirror bytes for 8 hosts: {eight['mirror_bytes'] / mib:.1f} MiB with the fleet cache, "
          f"{direct['mirror_bytes'] / mib:.1f} MiB without ({direct['mirror_bytes'] / eight['mirror_bytes']:.1f}x); "
          f"1 host with the cache: {one['mirror_bytes'] / mib:.1f} MiB")
    return 0 if eight["changes"] == one["changes"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

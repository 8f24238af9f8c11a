"""Deploy benchmark (not a test): fresh converge of 1 and 3 testbed hosts, then a no-op rerun.

Run as root:  .venv/bin/python -m testbed.deploy_bench
Prints times measured in this one run and the ratios between them; uses its own testbeds.
"""
from __future__ import annotations

from . import core
from .deployrun import run_deploy
from .layout import Testbed


def _measure(name: str, hosts: int) -> tuple[float, float, int]:
    tb = Testbed.named(name, hosts=hosts)
    core.down(tb)
    core.up(tb, log=lambda *_: None)
    try:
        fresh = run_deploy(tb.inventory_path)
        if fresh.rc != 0:
            raise SystemExit(f"fresh deploy to {name} failed:\n{fresh.stderr[-2000:]}")
        noop = run_deploy(tb.inventory_path)
        if noop.rc != 0:
            raise SystemExit(f"no-op deploy to {name} failed:\n{noop.stderr[-2000:]}")
        return fresh.seconds, noop.seconds, len(noop.changed_ops())
    finally:
        core.down(tb)


def main() -> int:
    fresh1, noop1, changes1 = _measure("bdep1", 1)
    fresh3, noop3, changes3 = _measure("bdep3", 3)
    print(f"fresh converge, 1 host:   {fresh1:6.1f} s")
    print(f"fresh converge, 3 hosts:  {fresh3:6.1f} s   ({fresh3 / fresh1:.2f}x the 1-host time)")
    print(f"no-op rerun, 1 host:      {noop1:6.1f} s   changes: {changes1}")
    print(f"no-op rerun, 3 hosts:     {noop3:6.1f} s   changes: {changes3}   (target < 5 s and 0 changes)")
    return 0 if changes1 == changes3 == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

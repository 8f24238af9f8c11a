"""The README's demo: boot the default testbed and show every host is a reachable systemd machine
with its simulated hardware. (The deploy and its report join here once deploy.py exists.)
"""
from __future__ import annotations

import subprocess

from . import core
from .layout import Testbed

# One SSH round trip per host gathers everything the report shows.
_PROBE = ("echo \"$(hostname)|$(systemctl is-system-running)|$(cat /proc/1/comm)|"
          "$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | paste -sd';' || true)\"")


def run_demo(tb: Testbed) -> int:
    report = core.up(tb)
    print(f"testbed {tb.name}: {len(tb.hosts)} hosts up in {report['seconds']:.1f}s; inventory {tb.inventory_path}")
    print(f"{'host':<14} {'profile':<10} {'address':<13} {'systemd':<8} {'pid 1':<8} gpus (nvidia-smi)")
    failed = 0
    for h in tb.hosts:
        p = subprocess.run(["ssh", "-F", str(tb.ssh_config), h.name, _PROBE], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            failed += 1
            print(f"{h.name:<14} {h.profile:<10} {h.ip:<13} unreachable: {p.stderr.strip()}")
            continue
        name, state, pid1, gpus = p.stdout.strip().split("|", 3)
        print(f"{name:<14} {h.profile:<10} {h.ip:<13} {state:<8} {pid1:<8} {gpus or 'none'}")
    print(f"try: ssh -F {tb.ssh_config} {tb.hosts[0].name}    |    python3 -m testbed down")
    return 1 if failed else 0

"""python3 -m testbed {up,status,down,stop,demo} — manage the local multi-host systemd testbed.

Examples:
    python3 -m testbed up                 # 3 hosts, one per profile (cpu_xeon, dual_gpu, dgx_spark)
    python3 -m testbed up --hosts 8 --name bench
    python3 -m testbed up --name site --hosts 2 --site-registries 1   # hosts pull from site-registry-1
    python3 -m testbed status
    python3 -m testbed down
"""
from __future__ import annotations

import argparse
import sys

from . import core
from .layout import DEFAULT_NAME, Testbed, TestbedError


def _print_up(tb: Testbed, report: dict) -> None:
    print(f"testbed {tb.name}: {len(report['hosts'])} hosts ready in {report['seconds']:.1f}s "
          f"(mirror {tb.mirror_url})")
    for h in report["hosts"]:
        how = "booted" if h["booted"] else "already running"
        print(f"  {h['name']:<14} {h['profile']:<10} {h['ip']:<14} {how}, ready after {h['ready_after_s']:.2f}s")
    print(f"inventory:  {tb.inventory_path}")
    print(f"ssh config: {tb.ssh_config}   (ssh -F {tb.ssh_config} {tb.hosts[0].name})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m testbed", description=__doc__.splitlines()[0])
    ap.add_argument("--name", default=DEFAULT_NAME, help="testbed name (default %(default)s)")
    sub = ap.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="boot the hosts that are not running (idempotent)")
    p_up.add_argument("--subnet", help="IPv4 /24 for the bridge (default derived from the name)")
    p_up.add_argument("--boot-timeout", type=float, default=45)
    p_st = sub.add_parser("status", help="show each host's state")
    p_down = sub.add_parser("down", help="remove every container, mount, namespace, link and process")
    p_stop = sub.add_parser("stop", help="shut one host down, keeping its disk")
    p_stop.add_argument("host")
    p_demo = sub.add_parser("demo", help="boot the default testbed, deploy to it, print a report")
    for p in (p_up, p_st, p_down, p_stop, p_demo):
        p.add_argument("--hosts", type=int, help="number of hosts (default: as booted, else 3)")
        p.add_argument("--site-registries", type=int,
                       help="site registry hosts the Ollama hosts pull from (default: as booted, else 0)")
    args = ap.parse_args(argv)
    try:
        hosts = args.hosts or core.recorded_host_count(args.name) or 3
        registries = args.site_registries if args.site_registries is not None else \
            core.recorded_site_registries(args.name) or 0
        tb = Testbed.named(args.name, hosts=hosts, subnet=getattr(args, "subnet", None), site_registries=registries)
        if args.command == "up":
            _print_up(tb, core.up(tb, boot_timeout=args.boot_timeout))
        elif args.command == "status":
            for r in core.status(tb):
                print(f"{r['name']:<14} {r['profile']:<10} {r['ip']:<14} {r['state']}")
        elif args.command == "stop":
            core.stop_host(tb, args.host)
        elif args.command == "down":
            left = core.down(tb)
            if left:
                print(f"testbed {tb.name}: could not remove: {', '.join(left)}", file=sys.stderr)
                return 1
            print(f"testbed {tb.name}: removed")
        elif args.command == "demo":
            from .demo import run_demo
            return run_demo(tb)
    except TestbedError as e:
        for line in str(e).splitlines():
            print(f"testbed: {line}", file=sys.stderr)
        return 1
    return 0

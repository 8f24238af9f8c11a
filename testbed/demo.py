"""The README's demo: boot the default testbed, deploy to it with the real CLI, print per host
what changed, the models, and the smoke inference figures.
"""
from __future__ import annotations

import json
import runpy
import subprocess
import sys

from . import core
from .deployrun import run_deploy
from .layout import PROJECT_ROOT, Testbed


def _models(inventory_path) -> dict[str, list[str]]:
    groups = runpy.run_path(str(inventory_path))
    return {name: data.get("ollama_models", []) for hosts in groups.values() if isinstance(hosts, list)
            for name, data in hosts}


def run_demo(tb: Testbed) -> int:
    report = core.up(tb)
    print(f"testbed {tb.name}: {len(tb.hosts)} hosts up in {report['seconds']:.1f}s; inventory {tb.inventory_path}")
    print(f"deploying: pyinfra -y {tb.inventory_path.relative_to(PROJECT_ROOT)} deploy.py")
    for h in tb.hosts:  # a report left from an earlier run must not pass for this one's
        (PROJECT_ROOT / "reports/smoke" / f"{h.name}.json").unlink(missing_ok=True)
    run = run_deploy(tb.inventory_path)
    print(f"deploy finished in {run.seconds:.1f}s, exit code {run.rc}")
    models = _models(tb.inventory_path)
    for h in tb.hosts:
        changed = [name.split(" | ")[-1] for name, _ in run.changed_ops(h.name)]
        smoke_file = PROJECT_ROOT / "reports/smoke" / f"{h.name}.json"
        smoke = json.loads(smoke_file.read_text()) if smoke_file.exists() else None
        print(f"\n{h.name} ({h.profile}, {h.ip})")
        print(f"  changed:  {', '.join(changed) if changed else 'nothing (already converged)'}")
        print(f"  models:   {', '.join(models.get(h.name, [])) or 'none'}")
        if smoke:
            print(f"  smoke:    {smoke['model']}: TTFT {smoke['ttft_ms']} ms, {smoke['tokens_per_s']} tok/s, "
                  f"load {smoke['load_ms']} ms")
        elif f"[{h.name}] smoke: passed before" in run.stderr:  # the deploy's own line, not a guess from no report
            print("  smoke:    none needed: passed before against this Ollama process and these models")
    if run.rc != 0:
        print("\n" + run.stderr[-3000:])
    else:
        print("\nquick benchmark (20 requests, 5 at once, per host) and seed 001's checklist:")
        bench = subprocess.run([sys.executable, "-m", "ollama_deploy.bench.loadtest", str(tb.inventory_path), "--level", "quick",
                                "--checklist"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
        print(bench.stdout.rstrip() or bench.stderr[-2000:])
        print(f"verify reports: {PROJECT_ROOT / 'reports/verify'}")
    print(f"\nnext: ssh -F {tb.ssh_config} {tb.hosts[0].name}   |   "
          f"pytest tests/testinfra --inventory {tb.inventory_path}   |   python3 -m testbed down")
    return run.rc

"""Run the real deploy CLI against an inventory and read its JSON results (tests, bench, demo).

Example:
    run = run_deploy("inventory/testbed.py")
    run.rc, run.seconds, run.changed_ops()
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from ollama_deploy.entry import DEPLOY_NAMES

from .layout import PROJECT_ROOT

CHECKS = ("Smoke", "Verify", "Models present")  # deploy names of the check steps


@dataclass
class DeployRun:
    rc: int
    seconds: float
    results: dict
    stderr: str

    def changed_ops(self, host: str | None = None, include_checks: bool = False) -> list[tuple[str, str]]:
        """(operation name, host) pairs that changed something. The smoke and verify steps are checks,
        not changes (pyinfra counts every python.call as a change)."""
        named = [(step_name(op["name"]), op) for op in self.results.get("operations", [])]
        return [(name, h) for name, op in named for h in op.get("success", [])
                if (include_checks or not name.startswith(CHECKS)) and (host is None or h == host)]


def step_name(name: str) -> str:
    """An operation's name below the entry point's own ("Install Ollama | Unit ollama.service")."""
    head, _, rest = name.partition(" | ")
    return rest if head in DEPLOY_NAMES and rest else name


def run_deploy(inventory, *extra: str, timeout: float = 600, deploy_file: str = "deploy.py",
               env: dict | None = None) -> DeployRun:
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pyinfra", "-y", "--json", str(inventory), deploy_file, *extra],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=timeout,
                       env={**os.environ, **(env or {})})
    seconds = time.monotonic() - started
    try:
        results = json.loads(p.stdout)["results"]
    except (ValueError, KeyError):
        results = {}
    return DeployRun(p.returncode, seconds, results, p.stderr)

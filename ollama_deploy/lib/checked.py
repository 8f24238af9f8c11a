"""Whether the checks that load a model (the smoke generate, verify's model load) would find what they
found when they last passed: the same Ollama process (systemd's InvocationID, new at every start, so
a restart, a crash or a reboot counts), the same models (manifest digests on /api/tags) and the same
check settings. A run that finds all three as they were loads no model: what sits in memory, and its
keep-alive, are left alone (a request's keep_alive replaces the loaded model's, server/sched.go; on a
GPU host a load can evict the model being served). ollama_smoke_every_run turns this off.

Example (inside python.call callbacks):
    if not unchanged_since_passed(host, settings, candidates):
        ...                                         # generate, load, check
    checks_passed(host, settings, candidates)       # once they pass
"""
from __future__ import annotations

import hashlib
import json

from pyinfra.api import FactProcessError

from ollama_deploy.facts.config import CHECKED
from ollama_deploy.facts.ollama import OllamaModels
from ollama_deploy.gocompat.names import canonical_model
from ollama_deploy.lib.operations import stamp_written
from ollama_deploy.lib.remote import shell
from ollama_deploy.lib.settings import api_url

_STATE: dict[str, tuple[str, str]] = {}  # host name -> (now, passed), read once per run


def check_key(invocation: str, digests: dict[str, str], candidates: list[str], prompt: str,
              run_smoke: bool) -> str:
    """`<InvocationID> <hash of what the checks run against>`; "" when Ollama runs no process.

    >>> check_key("ab12", {"m:latest": "sha256:1"}, ["m"], "hi", True) == check_key("ab12", {}, ["m"], "hi", True)
    False
    >>> check_key("", {}, ["m"], "hi", True)
    ''
    """
    if not invocation:
        return ""
    material = [candidates, [digests.get(canonical_model(m), "absent") for m in candidates], prompt, run_smoke]
    return f"{invocation} {hashlib.sha256(json.dumps(material).encode()).hexdigest()[:16]}"


def parse_state(output: str, candidates: list[str], prompt: str, run_smoke: bool) -> tuple[str, str]:
    """(now, passed) from the lines of check_state's command: InvocationID, the stamp, /api/tags."""
    lines = output.splitlines()
    invocation, passed, *tags = lines + ["", "none"][len(lines):]  # what a host that answered nothing lacks
    try:
        digests = OllamaModels().process(tags) if any(tags) else {}
    except FactProcessError:  # a server not answering JSON: nothing matches, the checks run
        digests = {}
    return check_key(invocation.strip(), digests, candidates, prompt, run_smoke), passed.strip()


def check_state(target, settings, candidates: list[str]) -> tuple[str, str]:
    """(what the checks would run against now, what they ran against when they last passed), one
    round trip per host and run (the smoke asks first, verify reuses it: nothing restarts between)."""
    if target.name not in _STATE:
        _, out, _ = shell(target, f"systemctl show ollama.service -p InvocationID --value; "
                                  f"cat {CHECKED} 2>/dev/null || echo none; "
                                  f"curl -fsS --max-time 5 {api_url(settings)}/api/tags 2>/dev/null || true")
        _STATE[target.name] = parse_state(out, candidates, settings.ollama_smoke_prompt, settings.ollama_run_smoke)
    return _STATE[target.name]


def unchanged_since_passed(target, settings, candidates: list[str]) -> bool:
    """The checks passed against this very process, configuration and models (and may be skipped)."""
    if settings.ollama_smoke_every_run:
        return False
    now, passed = check_state(target, settings, candidates)
    return bool(now) and now == passed


def checks_passed(target, settings, candidates: list[str]) -> None:
    """Record that the checks passed against what check_state saw."""
    now, passed = check_state(target, settings, candidates)
    if now and now != passed:
        shell(target, stamp_written(CHECKED, f"'{now}'"))
        _STATE[target.name] = (now, now)

"""Reload systemd and restart Ollama only when the binary, the unit or a drop-in changed.

Example (deploy.py):
    apply_changes(install_ollama() + configure_ollama())
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import python, server

from ollama_deploy.lib.operations import api_answers, unit_state
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.settings import api_url
from ollama_deploy.tasks.rollback import config_applied, fail_with_rollback, stale, wait_serving


@deploy("Apply")
def apply_changes(changes):
    settings = plan_for(host).settings
    prefix = settings.ollama_prefix
    # Gated at execution time: on an unchanged host this yields nothing (and so no restart). "Stale"
    # catches an earlier run killed between writing the files and restarting.
    restart_needed = [lambda: any(m.did_change() for m in changes) or stale(prefix)]
    unit_state(name="Ollama enabled at boot", unit="ollama.service", enabled=True)
    # `restart` also starts a stopped unit: one reload and one restart per changed host.
    server.shell(name="Reload systemd, restart Ollama (something changed)", _if=restart_needed,
                 commands=["systemctl daemon-reload", "systemctl restart ollama.service"])
    unit_state(name="Ollama running", unit="ollama.service", running=True)
    # After a restart: serving, or crash loop / timeout -> roll back to the last good configuration.
    python.call(name="Serving after the change, else roll back", function=_serving_or_roll_back,
                api=api_url(settings), timeout=settings.ollama_api_timeout, _if=restart_needed)
    api_answers(name="Ollama API answers", api=api_url(settings), timeout=settings.ollama_api_timeout)
    config_applied(name="Record the configuration Ollama runs with", prefix=prefix)


def _serving_or_roll_back(state, host, api: str, timeout: int):
    problem = wait_serving(host, api, timeout)
    if problem:
        return fail_with_rollback(host, f"Ollama does not serve after the change ({problem})", True, timeout)

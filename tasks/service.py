"""Reload systemd and restart Ollama only when the binary, the unit or a drop-in changed.

Example (deploy.py):
    apply_changes(install_ollama() + configure_ollama())
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import python, systemd
from pyinfra.operations.util import any_changed

from .operations import api_answers
from .plan import plan_for
from .rollback import fail_with_rollback, wait_serving
from .settings import api_url

@deploy("Apply")
def apply_changes(changes):
    settings = plan_for(host).settings
    # Gated at execution time: on an unchanged host this yields nothing (and so no restart).
    systemd.service(name="Reload systemd, restart Ollama (something changed)", service="ollama.service",
                    running=True, restarted=True, daemon_reload=True, _if=any_changed(*changes))
    systemd.service(name="Ollama enabled and running", service="ollama.service", running=True, enabled=True)
    # After a restart: serving, or crash loop / timeout -> roll back to the last good configuration.
    python.call(name="Serving after the change, else roll back", function=_serving_or_roll_back,
                api=api_url(settings), timeout=settings.ollama_api_timeout, _if=any_changed(*changes))
    api_answers(name="Ollama API answers", api=api_url(settings), timeout=settings.ollama_api_timeout)


def _serving_or_roll_back(state, host, api: str, timeout: int):
    problem = wait_serving(host, api, timeout)
    if problem:
        fail_with_rollback(host, f"Ollama does not serve after the change ({problem})", True, timeout)

"""Reload systemd and restart Ollama only when the binary, the unit or a drop-in changed.

Example (deploy.py):
    apply_changes(install_ollama() + configure_ollama())
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from .operations import api_answers
from .plan import plan_for
from .settings import api_url

@deploy("Apply")
def apply_changes(changes):
    settings = plan_for(host).settings
    # Gated at execution time: on an unchanged host this yields nothing (and so no restart).
    systemd.service(name="Reload systemd, restart Ollama (something changed)", service="ollama.service",
                    running=True, restarted=True, daemon_reload=True, _if=any_changed(*changes))
    systemd.service(name="Ollama enabled and running", service="ollama.service", running=True, enabled=True)
    api_answers(name="Ollama API answers", api=api_url(settings), timeout=settings.ollama_api_timeout)

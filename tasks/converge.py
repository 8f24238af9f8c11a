"""The deploy's steps in order: the runbook ``deploy_ollama()`` runs on each host.

Example:
    converge()    # inside a pyinfra deploy, once per host
"""
from __future__ import annotations

from ollama_deploy.tasks.configure import configure_ollama
from ollama_deploy.tasks.firewall import firewall
from ollama_deploy.tasks.install import install_ollama
from ollama_deploy.tasks.models import ensure_models, models_present_or_fail
from ollama_deploy.tasks.rollback import remember_good_config
from ollama_deploy.tasks.service import apply_changes
from ollama_deploy.tasks.smoke import smoke_test
from ollama_deploy.tasks.validate import validate_inventory
from ollama_deploy.tasks.verify import verify_host
from ollama_deploy.tasks.watch import watch


def converge() -> None:
    validate_inventory()  # every host checked before any is touched
    # pyinfra types a @deploy as returning an OperationMeta; these return the operations whose change
    # means "restart", and apply_changes takes them.
    changes = install_ollama() + configure_ollama()  # type: ignore[operator]
    firewall()
    apply_changes(changes)  # type: ignore[call-arg]
    ensure_models()
    smoke_test(changes)
    verify_host(changes, converging=True)
    remember_good_config()
    watch()
    models_present_or_fail()

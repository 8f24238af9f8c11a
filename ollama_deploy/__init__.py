"""ollama-deploy: turn plain Linux hosts into tuned, verified Ollama servers, from any pyinfra deploy.

Example (an outside project's deploy.py)::

    from ollama_deploy import deploy_ollama

    deploy_ollama(settings={"ollama_models": ["qwen2.5:0.5b"]})

The names below are loaded on first use (PEP 562), so that ``ollama_deploy.gocompat``, which the
test double imports on hosts without pyinfra, costs nothing but the standard library.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["deploy_ollama", "deploy_site_registry", "uninstall_ollama", "verify_ollama"]

if TYPE_CHECKING:
    from ollama_deploy.entry import deploy_ollama, deploy_site_registry, uninstall_ollama, verify_ollama


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ollama_deploy import entry
        return getattr(entry, name)
    raise AttributeError(f"module 'ollama_deploy' has no attribute {name!r}")

"""Pull the host's models (present ones are skipped); optionally remove unlisted ones.

Example (deploy.py):
    ensure_models()
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from .facts import OllamaModels, canonical_model
from .operations import model_absent, model_pulled
from .service import API
from .settings import resolve, selected_models


@deploy("Models")
def ensure_models():
    settings = resolve(host.data.dict())
    ollama = f"{settings.ollama_prefix}/bin/ollama"
    models = selected_models(settings)
    for model in models:
        model_pulled(name=f"Model {model}", model=model, api=API, ollama=ollama)
    if settings.ollama_prune_models:
        wanted = {canonical_model(m) for m in models}
        for model in sorted(host.get_fact(OllamaModels, api=API) - wanted):
            model_absent(name=f"Remove unlisted model {model}", model=model, api=API, ollama=ollama)

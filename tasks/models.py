"""Pull the host's models (present ones are skipped); optionally remove unlisted ones.

Example (deploy.py):
    ensure_models()
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from .facts import OllamaModels, canonical_model, tuned_name
from .fleetcache import fleet_cache_on, model_for
from .operations import model_absent, model_pulled, model_tuned, models_seeded
from .plan import plan_for
from .settings import api_url, selected_models


@deploy("Models")
def ensure_models():
    plan = plan_for(host)
    settings = plan.settings
    ollama = f"{settings.ollama_prefix}/bin/ollama"
    api = api_url(settings)
    models = selected_models(settings)
    if fleet_cache_on(settings):  # fetched once on the control node (at plan time), then copied; the pull below confirms
        cached = [model_for(model, settings) for model in models]
        models_seeded(name="Seed models from the fleet cache", models_dir=settings.ollama_models_dir,
                      manifests={c.manifest_relpath: str(c.manifest) for c in cached},
                      blobs={name: str(path) for c in cached for name, path in c.blobs.items()})
    for model in models:
        info = plan.models.get(model)
        model_pulled(name=f"Model {model}", model=model, api=api, ollama=ollama, models_dir=settings.ollama_models_dir,
                     size_bytes=info.weights_bytes if info else 0)
    for model, parameters in settings.ollama_model_parameters.items():
        model_tuned(name=f"Tuned {model}", model=model, parameters=parameters, api=api)
    if settings.ollama_prune_models:
        wanted = {canonical_model(m) for m in models} | {tuned_name(m) for m in settings.ollama_model_parameters}
        for model in sorted(host.get_fact(OllamaModels, api=api) - wanted):
            model_absent(name=f"Remove unlisted model {model}", model=model, api=api, ollama=ollama)

"""Pull the host's models (present ones are skipped); optionally remove unlisted ones. A model the
registry does not have is not pulled, the others are, and the host fails at the end of the run
with that line (a configuration that serves is not rolled back for it).

Example (deploy.py):
    ensure_models()
    ...
    models_present_or_fail()
"""
from __future__ import annotations

import functools

from pyinfra import host
from pyinfra.api import FactProcessError, deploy
from pyinfra.operations import python

from ollama_deploy.control.fleetcache import fleet_cache_on, model_for
from ollama_deploy.control.siteregistry import expected, load_model, site_name
from ollama_deploy.facts.ollama import OllamaModels
from ollama_deploy.gocompat.names import canonical_model, tuned_name
from ollama_deploy.lib.model_operations import (
    model_absent,
    model_pulled,
    model_pulled_from_site,
    model_tuned,
    models_seeded,
)
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.remote import shell
from ollama_deploy.lib.settings import api_url, selected_models
from ollama_deploy.tasks.rollback import fail_with_rollback


def models_on_host(plan, api: str) -> dict:
    """The host's models as the plan read them (no second round trip), else read now."""
    return plan.models_on_host if plan.models_on_host is not None else host.get_fact(OllamaModels, api=api)


@deploy("Models")
def ensure_models():
    plan = plan_for(host)
    settings = plan.settings
    ollama = f"{settings.ollama_prefix}/bin/ollama"
    api = api_url(settings)
    models = [m for m in selected_models(settings) if m not in plan.missing]  # the plan warned about those
    if fleet_cache_on(settings):  # fetched once on the control node (at plan time), then copied; the pull below confirms
        on_host = models_on_host(plan, api)
        cached = [model_for(model, settings, on_host.get(canonical_model(model))) for model in models]
        models_seeded(name="Seed models from the fleet cache", models_dir=settings.ollama_models_dir,
                      manifests={c.manifest_relpath: str(c.manifest) for c in cached},
                      blobs={name: str(path) for c in cached for name, path in c.blobs.items()})
    for model in models:
        info = plan.models.get(model)
        # A failed pull (no space, a registry error) does not stop the other models; the host fails at the end.
        if settings.ollama_site_registry:
            load = functools.partial(load_model, model, settings)
            if canonical_model(model) not in models_on_host(plan, api):
                expected(load)  # started as soon as the registry serves (site_registry's last step)
            model_pulled_from_site(name=f"Model {model} from the site registry", model=model,
                                   site_model=site_name(model, settings), load=load,
                                   insecure=settings.ollama_site_registry.startswith("http://"),
                                   api=api, ollama=ollama, _ignore_errors=True)
            continue
        model_pulled(name=f"Model {model}", model=model, api=api, ollama=ollama, models_dir=settings.ollama_models_dir,
                     size_bytes=info.weights_bytes if info else 0, _ignore_errors=True)
    for model, parameters in settings.ollama_model_parameters.items():
        if model in plan.missing:
            continue
        model_tuned(name=f"Tuned {model}", model=model, parameters=parameters, api=api)
    if settings.ollama_prune_models:
        wanted = {canonical_model(m) for m in models} | {tuned_name(m) for m in settings.ollama_model_parameters}
        present = models_on_host(plan, api)
        for model in sorted(set(present) - wanted):
            model_absent(name=f"Remove unlisted model {model}", model=model, api=api, ollama=ollama)


def _all_present(state, host, wanted: list, missing: dict, api: str):
    _, out, _ = shell(host, f"curl -fsS --max-time 10 {api}/api/tags")
    try:  # the fact's own reading of /api/tags, now that the pulls are done
        present = OllamaModels().process([out]) if out else {}
    except FactProcessError:
        present = {}
    failed = [f"{m}: the pull failed (its error is above)" for m in wanted if canonical_model(m) not in present]
    if not missing and not failed:
        return None
    lines = [f"not pulled, the registry does not have them: {'; '.join(missing.values())}"] if missing else []
    return fail_with_rollback(host, "; ".join(lines + failed), changed=False, timeout=0)


@deploy("Models present")
def models_present_or_fail():
    """Last in the run: every selected model present, else the host fails naming each one not pulled."""
    plan = plan_for(host)
    wanted = [m for m in selected_models(plan.settings) if m not in plan.missing]
    python.call(name="Every selected model present", function=_all_present, wanted=wanted, missing=plan.missing,
                api=api_url(plan.settings))

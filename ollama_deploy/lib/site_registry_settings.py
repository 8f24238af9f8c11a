"""The settings of a site registry host (the inventory's `site_registry` group), declared once.

Host data keys starting with `site_registry_` are these settings; `resolve_site_registry(data, name)`
validates them and returns a `SiteRegistrySettings`, or raises SettingsError with one line per problem.
The Ollama hosts name the registry with `ollama_site_registry` (lib/settings.py).

Example:
    s = resolve_site_registry({"site_registry_cert_file": "site.crt", "site_registry_key_file": "site.key"},
                              "models.site")
    s.url    # 'https://models.site:5443'
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ollama_deploy.lib import checks
from ollama_deploy.lib.checks import Networks
from ollama_deploy.lib.settings import SITE_REGISTRY_PREFIX as PREFIX
from ollama_deploy.lib.settings import SettingsError, setting, validation_problems

GROUP = "site_registry"  # the inventory group whose hosts get the registry instead of Ollama


class SiteRegistrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site_registry_name: str = setting(
        "", "The name Ollama hosts reach the registry by (its certificate's DNS name); default: the host's "
            "inventory name.")
    site_registry_port: int = setting(5443, "The port the registry's front (nginx) listens on, on every address.")
    site_registry_cert_file: str | None = setting(
        None, "The registry's certificate (PEM, a control-node path), signed by the site CA, for its name and "
              "its address (blob GETs are redirected to the address). Unset: plain HTTP.")
    site_registry_key_file: str | None = setting(None, "The certificate's private key (a control-node path).")
    site_registry_http_networks: Networks = setting(
        [], "Plain HTTP only: the networks that may read from the registry (required without a certificate).")
    site_registry_writers: Networks = setting(
        [], "Networks that may load models into the registry; default: the control node's address as the "
            "registry host sees it.")

    @model_validator(mode="after")
    def _tls_or_allowed_network(self):
        if (self.site_registry_cert_file is None) != (self.site_registry_key_file is None):
            raise ValueError("key site_registry_cert_file, value "
                             f"{self.site_registry_cert_file!r}: give it together with site_registry_key_file")
        if self.site_registry_cert_file is None and not self.site_registry_http_networks:
            raise ValueError("key site_registry_cert_file, value None: without TLS the registry serves plain "
                             "HTTP, which needs site_registry_http_networks (the networks allowed to read)")
        if self.site_registry_cert_file is not None:
            checks.pem_certificate("site_registry_cert_file", self.site_registry_cert_file)
        if not 0 < self.site_registry_port < 65536 or self.site_registry_port == 5000:
            raise ValueError(f"key site_registry_port, value {self.site_registry_port}: a port 1-65535 other "
                             "than 5000 (the registry itself, on loopback)")
        return self

    @property
    def tls(self) -> bool:
        return self.site_registry_cert_file is not None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.site_registry_name}:{self.site_registry_port}"


def resolve_site_registry(data: dict[str, Any], host_name: str) -> SiteRegistrySettings:
    values = {k: v for k, v in data.items() if k.startswith(PREFIX)}
    values.setdefault("site_registry_name", host_name)
    try:
        return SiteRegistrySettings(**values)
    except ValidationError as e:
        raise SettingsError(validation_problems(e, values)) from None

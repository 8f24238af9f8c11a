"""A site registry on the hosts of the inventory's `site_registry` group: Debian's docker-registry
on loopback, sandboxed, behind a front of its own (Debian's nginx binary with this deploy's config,
in a unit with no capabilities), which serves the LAN (TLS with the site's certificate, or plain HTTP
to allowed networks only), lets only the writers' networks load models, and answers blob GETs by
name with the 307 Ollama needs. Other hosts are left alone.

Example (ollama_deploy.entry.deploy_site_registry, before deploy_ollama so the registry serves before
any host pulls):
    site_registry()
"""
from __future__ import annotations

from pathlib import Path

from pyinfra import host, inventory, logger, state
from pyinfra.api import DeployError, operation
from pyinfra.facts.server import Command
from pyinfra.operations import python, server, systemd

from ollama_deploy.control.siteregistry import preload
from ollama_deploy.lib.operations import digest_recorded, files_content, files_stale, unit_state
from ollama_deploy.lib.remote import shell
from ollama_deploy.lib.settings import SettingsError
from ollama_deploy.lib.site_registry_settings import GROUP, SiteRegistrySettings, resolve_site_registry
from ollama_deploy.tasks.configure import render
from ollama_deploy.tasks.install import debian_packages

CONFIG = "/etc/docker/registry/config.yml"
SANDBOX = "/etc/systemd/system/docker-registry.service.d/ollama-deploy.conf"
FRONT = "ollama-site-registry-front.service"
FRONT_UNIT = f"/etc/systemd/system/{FRONT}"
FRONT_DIR = "/etc/ollama-site-registry"
FRONT_CONFIG = f"{FRONT_DIR}/nginx.conf"
CREDENTIALS = f"/run/credentials/{FRONT}"  # LoadCredential= puts the certificate and key here for nginx
STAMPS = "/var/lib/ollama-deploy"
REGISTRY_FILES = f"{SANDBOX} {CONFIG}"
FRONT_FILES = f"{FRONT_UNIT} {FRONT_CONFIG} {FRONT_DIR}/site.crt {FRONT_DIR}/site.key"
# Debian's own nginx.service serves its default site on port 80: turned off unless it serves more.
OTHER_NGINX_SITES = "find /etc/nginx/sites-enabled /etc/nginx/conf.d -mindepth 1 ! -name default 2>/dev/null | head -1"
PROBE_BLOB = "/v2/ollama-deploy/probe/blobs/sha256:" + "0" * 64  # any blob path: the front redirects before asking


def _settings() -> SiteRegistrySettings:
    try:
        return resolve_site_registry(host.data.dict(), host.name)
    except SettingsError as e:
        raise DeployError("invalid settings, nothing was changed:\n"
                          + "\n".join(f"host {host.name}: {p}" for p in e.problems)) from None


def _writers(s: SiteRegistrySettings) -> list[str]:
    """The control node's address as this host sees it (SSH_CONNECTION's first field), unless listed."""
    if s.site_registry_writers:
        return list(s.site_registry_writers)
    return [host.get_fact(Command, command='set -- $SSH_CONNECTION; printf %s "$1"') or "127.0.0.1"]


def _serves(state, host, s: SiteRegistrySettings) -> bool:
    """The front answers the API on its address and redirects blob GETs by name (a check, run every time)."""
    curl = "curl -ksS -o /dev/null --max-time 10 -w '%{http_code} %{redirect_url}'"
    base = f"{'https' if s.tls else 'http'}://127.0.0.1:{s.site_registry_port}"
    # nginx and the registry may still be starting after a restart: up to 10 s.
    _, api, _ = shell(host, f"for i in $(seq 20); do a=$({curl} {base}/v2/); [ \"${{a%% *}}\" = 200 ] && break; "
                            f"sleep 0.5; done; echo \"$a\"")
    by_name = f"--resolve {s.site_registry_name}:{s.site_registry_port}:127.0.0.1 {s.url}"
    _, blob, _ = shell(host, f"{curl} {by_name}{PROBE_BLOB}")
    if not api.startswith("200") or not blob.startswith("307 "):
        host.log(f"site registry: {base}/v2/ answered {api or 'nothing'!r}, a blob GET by name {blob or 'nothing'!r} "
                 f"(want 200, and 307 to the address); see journalctl -u docker-registry -u {FRONT}", logger.error)
        return False
    return True


@operation()
def steps_done_everywhere():
    """
    Nothing on any host: called on every host of the run, this one operation orders the registry's
    steps before every host's pulls. pyinfra merges the hosts' operation lists into one order (a
    topological sort), and lists with no operation in common interleave: without it the first host
    asked the registry for the Ollama release before the registry was installed.

    **Example:**

    .. code:: python

        steps_done_everywhere(name="Site registry ready for the hosts")
    """
    if GROUP in host.groups:
        if state.is_executing:  # not when pyinfra checks for changes at plan time (without -y)
            preload()  # the registry serves (its last step checked): what the hosts will fetch starts uploading
        host.noop("the site registry's steps are done")
    else:
        host.noop("pulls wait for the site registry")
    return
    yield


def site_registry() -> None:
    """The registry's steps on a host of the site_registry group (then one no-op on every host)."""
    if not inventory.get_group(GROUP, []):
        return
    if GROUP in host.groups:
        _registry_steps()
    steps_done_everywhere(name="Site registry ready for the hosts")


def _registry_steps() -> None:
    s = _settings()
    debian_packages(["docker-registry", "nginx-light", "curl"], "The site registry and its front")
    sandbox = files_content(name="Registry sandbox", files={SANDBOX: render("site-registry-hardening.conf.j2")})
    config = files_content(name="Registry config", files={CONFIG: render("site-registry.yml.j2")})
    cert, key = f"{FRONT_DIR}/site.crt", f"{FRONT_DIR}/site.key"
    tls = files_content(name="Front certificate and key", mode="600", files={
        cert: Path(s.site_registry_cert_file).expanduser().read_text() if s.tls else None,  # type: ignore[arg-type]
        key: Path(s.site_registry_key_file).expanduser().read_text() if s.tls else None})  # type: ignore[arg-type]
    front = files_content(name="Front (nginx config, unit)", files={
        FRONT_CONFIG: render("site-registry-nginx.conf.j2", name=s.site_registry_name, port=s.site_registry_port,
                             tls=s.tls, cert=f"{CREDENTIALS}/site.crt", key=f"{CREDENTIALS}/site.key",
                             readers=[] if s.tls else s.site_registry_http_networks, writers=_writers(s)),
        FRONT_UNIT: render("site-registry-front.service.j2", config=FRONT_CONFIG, tls=s.tls, cert=cert, key=key)})
    systemd.service(name="Debian's nginx.service off (it serves only its default site)", service="nginx.service",
                    running=False, enabled=False, _if=lambda: not host.get_fact(Command, command=OTHER_NGINX_SITES))
    # Gated at execution time: an unchanged host restarts and reloads nothing. A stale stamp catches a
    # run that wrote the files but died, or failed, before applying them.
    registry_stamp, front_stamp = f"{STAMPS}/site-registry-applied", f"{STAMPS}/site-registry-front-applied"
    # Enabled before the restart's daemon-reload: `enable --no-reload` is seen by systemd only after one.
    unit_state(name="Registry enabled at boot", unit="docker-registry.service", enabled=True)
    server.shell(name="Restart the registry (its config or sandbox changed)", _if=[
        lambda: sandbox.did_change() or config.did_change() or files_stale(REGISTRY_FILES, registry_stamp)],
        commands=["systemctl daemon-reload", "systemctl restart docker-registry.service"])
    unit_state(name="Registry running", unit="docker-registry.service", running=True)
    digest_recorded(name="Record the registry's configuration", files=REGISTRY_FILES, stamp=registry_stamp)
    unit_state(name="Front enabled at boot", unit=FRONT, enabled=True)
    server.shell(name="Restart the front (its config, unit or certificate changed)", _if=[
        lambda: tls.did_change() or front.did_change() or files_stale(FRONT_FILES, front_stamp)],
        commands=["systemctl daemon-reload", f"systemctl restart {FRONT}"])
    unit_state(name="Front running", unit=FRONT, running=True)
    digest_recorded(name="Record the front's configuration", files=FRONT_FILES, stamp=front_stamp)
    python.call(name="Verify site registry serves and redirects", function=_serves, s=s)

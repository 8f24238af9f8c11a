"""Install Ollama like the official installer does, but pinned and checksum-verified.

Example (deploy.py):
    changed = install_ollama()      # OperationMetas whose change means "restart needed"
"""
from __future__ import annotations

import functools
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Groups
from pyinfra.operations import apt, files, server

from ollama_deploy.control.fleetcache import fleet_cache_on, release_for
from ollama_deploy.control.release import CACHE_DIR, Artifact, artifact_for, auth_headers
from ollama_deploy.control.siteregistry import expected, load_release, release_url
from ollama_deploy.facts.ollama import InstalledRelease
from ollama_deploy.lib.checks import listens_on_loopback
from ollama_deploy.lib.operations import account_applied, files_content, release_installed
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.tasks.adopt import taken_over
from ollama_deploy.tasks.configure import render

OLLAMA_HOME = "/usr/share/ollama"
SITE_CA_DIR = "/etc/ollama-deploy/site-ca"  # in Ollama's SSL_CERT_DIR (its unit)
SITE_CA = f"{SITE_CA_DIR}/ollama-site-ca.pem"
TRUST_STORE_SITE_CA = "/usr/local/share/ca-certificates/ollama-site-ca.crt"  # where earlier versions put it


def host_tools(artifact_name: str) -> None:
    """What the install and the checks run on the host, from its own package sources, when missing:
    curl (the download, the API checks), CA certificates (Ollama pulls over HTTPS), zstd (the
    .tar.zst release). A bare Debian host has none of them; an installed one costs one fact."""
    debian_packages(["curl", "ca-certificates"] + (["zstd"] if artifact_name.endswith(".zst") else []),
                    "Tools the install needs")


def debian_packages(wanted: list[str], what: str) -> None:
    """Install what is missing of `wanted` from the host's own sources (package lists updated first,
    only then: a host that has them all costs one fact and changes nothing)."""
    installed = host.get_fact(DebPackages)  # once: pyinfra 3 runs a fact's command at every get_fact
    missing = [p for p in wanted if p not in installed]
    if missing:
        apt.update(name=f"Package lists ({what.lower()}: missing)")
        apt.packages(name=f"{what}: {', '.join(missing)}", packages=missing, no_recommends=True)


@deploy("Install Ollama")
def install_ollama():
    plan = plan_for(host)
    settings = plan.settings
    # First: a hand-made configuration (refused at plan time unless ollama_adopt) goes to a backup,
    # before the unit and drop-ins below replace it.
    adopted = taken_over(name="Take over the configuration made outside this tool", foreign=list(plan.foreign),
                         models_dir=settings.ollama_models_dir,
                         stamp=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    artifact = artifact_for(settings, plan.hardware.arch)
    host_tools(artifact.name)
    # The site CA is trusted by Ollama (its unit's SSL_CERT_DIR) and the release download (curl --cacert)
    # only, as Docker trusts a registry's CA (certs.d/): not by every TLS client on the host, and with
    # no update-ca-certificates run (0.8 CPU-s a host, measured). Go reads it once per process: a new
    # site CA restarts Ollama. Before the download, which may come from the site registry too.
    site_ca = files_content(name="Site CA (for Ollama and the download)", files={
        SITE_CA: Path(settings.ollama_site_ca_file).expanduser().read_text() if settings.ollama_site_ca_file else None})
    in_trust_store = files_content(name="Site CA out of the host's trust store (earlier versions put it there)",
                                   files={TRUST_STORE_SITE_CA: None})
    server.shell(name="Trust store without the site CA", commands=["update-ca-certificates --fresh"],
                 _if=in_trust_store.did_change)
    load_into_site = None
    if settings.ollama_site_registry:
        # Loaded into the site registry once per run (from the control node), fetched by each host over the LAN.
        load_into_site = functools.partial(load_release, artifact, settings)
        if host.get_fact(InstalledRelease, prefix=settings.ollama_prefix) != artifact.sha256:
            expected(load_into_site)  # started as soon as the registry serves (site_registry's last step)
        artifact = Artifact(artifact.name, release_url(artifact, settings), artifact.sha256)
    elif fleet_cache_on(settings) and not artifact.local_path:
        # Fetched once for the fleet on the control node (verified), then uploaded like an air-gapped one.
        artifact = Artifact(artifact.name, f"file://{CACHE_DIR}/{artifact.name}", artifact.sha256,
                            str(release_for(artifact, settings)))
    # The account and the directories it writes, declared the systemd way (as distribution packages
    # do): one cheap check per run, where pyinfra's server.user reads every account on the host.
    # GPU device nodes belong to render/video; Ollama needs them, where the groups exist.
    groups = host.get_fact(Groups)
    gpu_groups = [g for g in ("render", "video") if g in groups]
    sysusers, tmpfiles = "/etc/sysusers.d/ollama.conf", "/etc/tmpfiles.d/ollama.conf"
    files_content(name="Account and directories (sysusers.d, tmpfiles.d)", files={
        sysusers: render("sysusers.conf.j2", home=OLLAMA_HOME, groups=gpu_groups),
        tmpfiles: render("tmpfiles.conf.j2", home=OLLAMA_HOME, models_dir=settings.ollama_models_dir)})
    account_applied(name="User ollama and its directories", user="ollama", groups=gpu_groups,
                    dirs=[OLLAMA_HOME, f"{OLLAMA_HOME}/.ollama", settings.ollama_models_dir],
                    sysusers=sysusers, tmpfiles=tmpfiles)

    def not_installed():
        return host.get_fact(InstalledRelease, prefix=settings.ollama_prefix) != artifact.sha256

    curl_config = None
    if artifact.local_path:
        # Air-gapped: upload the artifact; the same checksum-verified install then reads it via file://.
        files.put(name=f"Upload {artifact.name}", src=artifact.local_path, dest=f"{CACHE_DIR}/{artifact.name}",
                  mode="644", _if=not_installed)
    elif auth_headers():
        # The token travels in a root-only file (curl -K), so no command line or log shows it.
        curl_config = f"{CACHE_DIR}/mirror-auth.curlrc"
        files.put(name="Mirror credentials for the download", src=StringIO(
                  "".join(f'header = "{k}: {v}"\n' for k, v in auth_headers().items())),
                  dest=curl_config, mode="600", _if=not_installed)
    binary = release_installed(name=f"Ollama release {settings.ollama_version}",
                               url=artifact.url, sha256=artifact.sha256, prefix=settings.ollama_prefix,
                               cache_dir=CACHE_DIR, curl_config=curl_config, load=load_into_site,
                               cacert=SITE_CA if settings.ollama_site_registry and settings.ollama_site_ca_file else None)
    unit = files_content(name="Unit ollama.service", files={"/etc/systemd/system/ollama.service": render(
        "ollama.service.j2", prefix=settings.ollama_prefix, home=OLLAMA_HOME, models_dir=settings.ollama_models_dir,
        gpu=bool(plan.hardware.gpus), firewall=not listens_on_loopback(settings.ollama_host),
        site_ca_dir=SITE_CA_DIR if settings.ollama_site_ca_file else None)})
    return [adopted, site_ca, binary, unit]

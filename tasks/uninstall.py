"""Remove what the deploy installed; the models and the `ollama` account stay unless asked.

Stops and disables ollama.service (and the firewall unit, whose stop deletes its nftables table),
then removes the unit, the drop-ins, the firewall rules, the sleep hook, the binary and
lib/ollama, the sysusers.d/tmpfiles.d entries and the tool's own state and cache. Backups of
configurations taken over (/var/lib/ollama-deploy/adopted/) are the operator's files and stay.
A second run changes nothing.

Example (uninstall.py):
    uninstall_ollama()
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import DeployError, deploy
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from ollama_deploy.control.release import CACHE_DIR
from ollama_deploy.facts.config import APPLIED, CHECKED, LAST_GOOD
from ollama_deploy.lib.dropins import DROPIN_DIR, DROPIN_FILES
from ollama_deploy.lib.operations import files_content
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.tasks.configure import RESUME_HOOK
from ollama_deploy.tasks.firewall import RULES
from ollama_deploy.tasks.firewall import UNIT as FIREWALL_UNIT
from ollama_deploy.tasks.firewall import UNIT_PATH as FIREWALL_UNIT_PATH
from ollama_deploy.tasks.install import OLLAMA_HOME, SITE_CA
from ollama_deploy.tasks.watch import FILES as CHECK_FILES
from ollama_deploy.tasks.watch import METRICS_DIR
from ollama_deploy.tasks.watch import TIMER as CHECK_TIMER

UNIT_PATH = "/etc/systemd/system/ollama.service"
SYSUSERS, TMPFILES = "/etc/sysusers.d/ollama.conf", "/etc/tmpfiles.d/ollama.conf"


def installed_files(prefix: str) -> list[str]:
    """Every file the deploy writes outside directories it owns whole."""
    return [UNIT_PATH, *(f"{DROPIN_DIR}/{name}" for name in DROPIN_FILES), FIREWALL_UNIT_PATH, RULES,
            RESUME_HOOK, f"{prefix}/bin/ollama", SYSUSERS, TMPFILES, APPLIED, CHECKED, *CHECK_FILES,
            f"{METRICS_DIR}/ollama_check.prom", SITE_CA]


@deploy("Uninstall Ollama")
def uninstall_ollama():
    settings = plan_for(host, check=False).settings
    models_dir = settings.ollama_models_dir
    if (settings.ollama_uninstall_account and not settings.ollama_uninstall_models
            and models_dir.startswith(OLLAMA_HOME + "/")):
        raise DeployError(f"host {host.name}: key ollama_uninstall_account, value True: the account's home "
                          f"{OLLAMA_HOME} holds the models ({models_dir}); also set ollama_uninstall_models=true, "
                          "or keep the account")
    for unit in ("ollama.service", FIREWALL_UNIT, CHECK_TIMER):
        systemd.service(name=f"Stop and disable {unit}", service=unit, running=False, enabled=False)
    removed = [files_content(name="Unit, drop-ins, firewall, sleep hook, binary, sysusers/tmpfiles entries",
                             files=dict.fromkeys(installed_files(settings.ollama_prefix))),
               files.directory(name="lib/ollama", path=f"{settings.ollama_prefix}/lib/ollama", present=False),
               files.directory(name="Last good configuration", path=LAST_GOOD, present=False),
               files.directory(name="Release cache", path=CACHE_DIR, present=False)]
    # Empty once our drop-ins are gone; a drop-in someone else writes there later keeps it.
    server.shell(name="Drop-in and rules directories, if empty",
                 commands=[f"rmdir --ignore-fail-on-non-empty {DROPIN_DIR} {RULES.rsplit('/', 1)[0]} 2>/dev/null "
                           "|| true"], _if=any_changed(*removed))
    systemd.daemon_reload(name="Reload systemd", _if=any_changed(*removed))
    if settings.ollama_uninstall_models:
        files.directory(name=f"Models in {models_dir}", path=models_dir, present=False)
    if settings.ollama_uninstall_account:
        server.user(name="User ollama", user="ollama", present=False)
        server.group(name="Group ollama", group="ollama", present=False)
        files.directory(name=f"Home {OLLAMA_HOME}", path=OLLAMA_HOME, present=False)

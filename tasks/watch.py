"""Keep verifying after the deploy: ollama-check.timer runs verify's checks on the host and writes
them as Prometheus metrics for node_exporter's textfile collector (ollama_watch).

The check compares the values the deploy intends with Ollama's own `server config` line, the
compute library Ollama found at start with the one the host should use, and, on GPU hosts, that
no loaded model sits wholly on the CPU (/api/ps, which changes no keep-alive). With
ollama_watch_heal a GPU host found fallen back to the CPU (seed 003's suspend/resume) gets
nvidia_uvm reloaded and Ollama restarted, once per boot, and the metrics say so.

Example (deploy.py):
    watch()
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from ollama_deploy.lib.dropins import dropins
from ollama_deploy.lib.ollama_env import READS, logged_form
from ollama_deploy.lib.operations import files_content, unit_state
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.settings import api_url
from ollama_deploy.tasks.configure import render

SCRIPT = "/usr/local/libexec/ollama-deploy/ollama-check"
EXPECTED = "/etc/ollama-deploy/check-expected"
METRICS_DIR = "/var/lib/prometheus/node-exporter"
SERVICE, TIMER = "ollama-check.service", "ollama-check.timer"
FILES = (SCRIPT, EXPECTED, f"/etc/systemd/system/{SERVICE}", f"/etc/systemd/system/{TIMER}")


def expected_lines(settings) -> str:
    """`KEY:VALUE` as Ollama's server config line prints each variable the drop-ins set (lists aside)."""
    lines = []
    for file_lines in dropins(settings).values():
        for line in file_lines:
            env, _, raw = line.value.partition("=")
            if line.directive == "Environment" and READS.get(env, None) and READS[env].logged \
                    and not READS[env].reader.startswith("func AllowedOrigins"):
                lines.append(f"{env}:{logged_form(env, raw)}")
    return "".join(f"{line}\n" for line in lines)


@deploy("Watch")
def watch():
    plan = plan_for(host)
    s = plan.settings
    on, heal = s.ollama_watch, bool(s.ollama_watch_heal)
    if not on:  # stop and disable before the files go, when watching is switched off
        systemd.service(name="Check timer off", service=TIMER, running=False, enabled=False,
                        _if=lambda: bool(host.get_fact(File, path=FILES[3])))
    else:
        files.directory(name="Textfile collector directory", path=METRICS_DIR, mode="755")
    script = files_content(name="Check script", mode="755", files={SCRIPT: render(
        "ollama-check.sh.j2", metrics=f"{METRICS_DIR}/ollama_check.prom", expected=EXPECTED, api=api_url(s),
        want_library="CUDA" if plan.wants_gpu else "cpu", heal=heal) if on else None})
    units = files_content(name="Check expectations, unit and timer", files={
        EXPECTED: expected_lines(s) if on else None,
        FILES[2]: render("ollama-check.service.j2", script=SCRIPT, metrics_dir=METRICS_DIR, heal=heal) if on else None,
        FILES[3]: render("ollama-check.timer.j2", interval=s.ollama_watch_interval) if on else None})
    systemd.daemon_reload(name="Reload systemd (check units)", _if=any_changed(script, units))
    if on:
        unit_state(name="Check timer on", unit=TIMER, enabled=True, running=True)

"""A host tuned by hand as seed 003 describes it (an install.sh unit, its 10-gpu.conf, models-path.conf,
override.conf and performance.conf, an EnvironmentFile, its models in a non-default directory) is
refused with one line per directive, verify names the real cause of its CPU fallback, and with
ollama_adopt it is taken over: backed up, serving on its GPUs, no model lost, the next run a no-op."""
import json
import shlex

import pytest

from testbed.deployrun import PROJECT_ROOT, run_deploy
from tests.deploy.hosts import ssh
from tests.unit.test_adopt import SEED003_FILES

MODELS = "/srv/ollama/models"
DEFAULT_MODELS = "/usr/share/ollama/.ollama/models"
CONFIG = "/etc/systemd/system/ollama.service /etc/systemd/system/ollama.service.d"


def _checksums(tb, host) -> str:
    return ssh(tb, host, f"find {CONFIG} /etc/default -type f | sort | xargs sha256sum").stdout


@pytest.fixture
def seed003_host(deploy_testbed, first_run):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "dual_gpu")
    writes = "; ".join(f"printf '%s' {shlex.quote(text)} > {path.split(' ')[0]}" for path, text in SEED003_FILES.items())
    prepared = ssh(tb, host, f"set -e; systemctl stop ollama; rm -f /etc/systemd/system/ollama.service.d/*.conf; "
                             f"mkdir -p {MODELS}; cp -a {DEFAULT_MODELS}/. {MODELS}/; rm -rf {DEFAULT_MODELS}/*; "
                             f"chown -R ollama:ollama /srv/ollama; {writes}; systemctl daemon-reload; "
                             "systemctl restart ollama")
    assert prepared.returncode == 0, prepared.stderr
    yield host
    ssh(tb, host, f"systemctl stop ollama; cp -a {MODELS}/. {DEFAULT_MODELS}/; rm -rf /srv/ollama "
                  "/var/lib/ollama-deploy/adopted /var/lib/ollama-deploy/adopted.json /etc/default/ollama")
    assert run_deploy(tb.inventory_path, "--limit", host).rc == 0


def test_a_hand_tuned_host_is_refused_then_taken_over_with_nothing_lost(deploy_testbed, seed003_host):
    tb, host = deploy_testbed, seed003_host
    models_before = ssh(tb, host, f"find {MODELS} -type f | sort | xargs sha256sum").stdout
    config_before = _checksums(tb, host)

    refused = run_deploy(tb.inventory_path, "--limit", host)
    assert refused.rc != 0 and "invalid settings, nothing was changed" in refused.stderr
    gpu_conf = f"host {host}: file /etc/systemd/system/ollama.service.d/10-gpu.conf, "
    for line in (gpu_conf + "Environment=OLLAMA_LLM_LIBRARY=cuda: harmful: key ollama_llm_library, value 'cuda'",
                 gpu_conf + "Environment=OLLAMA_NUM_GPU_LAYERS=999: never read by Ollama",
                 f"host {host}: file /etc/systemd/system/ollama.service, ExecStart=/usr/local/bin/ollama serve: "
                 "overridden by ours", f"host {host}: key ollama_adopt, value False"):
        assert line in refused.stderr, line
    assert _checksums(tb, host) == config_before and "Traceback" not in refused.stderr

    # verify alone blames the hand-made library setting, not the suspend/resume bug
    verified = run_deploy(tb.inventory_path, "--limit", host, deploy_file="verify.py")
    assert verified.rc != 0
    assert "OLLAMA_LLM_LIBRARY=cuda, set outside this tool's drop-ins names no GPU library directory" in verified.stderr
    assert "nvidia_uvm" not in verified.stderr

    adopted = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_adopt=true")
    assert adopted.rc == 0, adopted.stderr[-3000:]
    assert f"[{host}] taking over file /etc/systemd/system/ollama.service.d/override.conf" in adopted.stderr
    backup = ssh(tb, host, "cd /var/lib/ollama-deploy/adopted/* && find . -type f | sort").stdout.split()
    assert backup == ["./etc/systemd/system/ollama.service", *(f"./etc/systemd/system/ollama.service.d/{f}" for f in
                      ("10-gpu.conf", "models-path.conf", "override.conf", "performance.conf"))]
    heads = ssh(tb, host, "head -qn1 /etc/systemd/system/ollama.service /etc/systemd/system/ollama.service.d/*").stdout
    assert all("managed by ollama-deploy" in line.lower() for line in heads.splitlines())
    assert f"OLLAMA_MODELS={MODELS}" in ssh(tb, host, "systemctl show -p Environment ollama").stdout
    assert ssh(tb, host, f"find {MODELS} -type f | sort | xargs sha256sum").stdout == models_before  # nothing lost
    report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
    assert report["ok"] and any(c["setting"] == "inference compute" and c["seen"] == "CUDA,CUDA"
                                for c in report["checks"]), report["checks"]

    again = run_deploy(tb.inventory_path, "--limit", host)
    assert again.rc == 0 and again.changed_ops() == [], again.changed_ops()

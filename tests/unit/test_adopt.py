"""tasks/adopt: seed 003's hand-made configuration (its drop-ins, an install.sh unit) read and judged
the way the plan refuses or takes over such a host."""
from ollama_deploy.facts.foreign import Directive, parse
from ollama_deploy.lib.plan import _foreign_problems, settings_from
from ollama_deploy.lib.profiles import PROFILES
from ollama_deploy.tasks.adopt import foreign_models_dir
from tests.unit.recorded import SEED003, gpus, machine
from tests.unit.test_settings import group

D = "/etc/systemd/system/ollama.service.d"
INSTALL_SH_UNIT = """[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=/usr/local/bin/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

[Install]
WantedBy=default.target
"""
SEED003_FILES = {
    "/etc/systemd/system/ollama.service": INSTALL_SH_UNIT,
    f"{D}/10-gpu.conf": "[Service]\n# Expose selected GPUs\nEnvironment=CUDA_VISIBLE_DEVICES=0,1\n"
                        "Environment=CUDA_DEVICE_ORDER=PCI_BUS_ID\nEnvironment=OLLAMA_LLM_LIBRARY=cuda\n"
                        "Environment=OLLAMA_NO_CUDA=0\nEnvironment=OLLAMA_NUM_GPU_LAYERS=999\n"
                        "Environment=OLLAMA_SCHED_SPREAD=true\n",
    f"{D}/models-path.conf": '[Service]\nEnvironment="OLLAMA_MODELS=/srv/ollama/models"\n',
    f"{D}/override.conf": "[Service]\nEnvironment=OLLAMA_LLM_LIBRARY=cuda OLLAMA_NUM_GPU_LAYERS=999 OLLAMA_NO_CUDA=0\n"
                          "EnvironmentFile=-/etc/default/ollama\n",
    "/etc/default/ollama (EnvironmentFile)": "# site\nOLLAMA_KEEP_ALIVE=\"2h\"\n",
    f"{D}/performance.conf": '[Service]\nEnvironment="OLLAMA_FLASH_ATTENTION=1"\nEnvironment="OLLAMA_KEEP_ALIVE=1h"\n',
}


def fact_output(files: dict[str, str]) -> list[str]:
    return [line for path, text in files.items() for line in [f"==> {path}", *text.splitlines(), ""]]


def test_every_service_directive_is_read_environment_assignments_one_by_one():
    found = parse(fact_output(SEED003_FILES))
    assert Directive(f"{D}/override.conf", "Environment", "OLLAMA_NUM_GPU_LAYERS=999") in found
    assert Directive("/etc/default/ollama (EnvironmentFile)", "Environment", "OLLAMA_KEEP_ALIVE=2h") in found
    assert Directive("/etc/systemd/system/ollama.service", "ExecStart", "/usr/local/bin/ollama serve") in found
    assert not any(d.directive in ("Description", "WantedBy") for d in found)  # not [Service]
    assert len(found) == 6 + 6 + 1 + 4 + 1 + 2
    assert foreign_models_dir(found) == "/srv/ollama/models"


def test_seed_003_is_refused_one_line_per_directive_with_its_verdict():
    hw = machine("dual_gpu", gpus=gpus(SEED003))
    data = {**group("all"), **PROFILES["dual_gpu"].settings}
    lines = _foreign_problems(parse(fact_output(SEED003_FILES)), settings_from(hw, data, "dual_gpu"), hw, data,
                              "dual_gpu", "h")
    verdict = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[:-1]}
    gpu = f"file {D}/10-gpu.conf, Environment="
    assert verdict[gpu + "CUDA_VISIBLE_DEVICES=0,1"] == "harmless: the same as ours"
    assert verdict[gpu + "OLLAMA_LLM_LIBRARY=cuda"].startswith("harmful: key ollama_llm_library, value 'cuda'")
    assert "run on the CPU" in verdict[gpu + "OLLAMA_LLM_LIBRARY=cuda"]
    assert verdict[gpu + "OLLAMA_NUM_GPU_LAYERS=999"].startswith("never read by Ollama: GPU layers are the per-model")
    assert verdict[gpu + "OLLAMA_SCHED_SPREAD=true"].startswith("harmless: this host's plan leaves ollama_sched_spread")
    perf = f"file {D}/performance.conf, Environment="
    assert verdict[perf + "OLLAMA_FLASH_ATTENTION=1"] == "harmless: the same as ours"  # "1" parses as true
    assert verdict["file /etc/default/ollama (EnvironmentFile), Environment=OLLAMA_KEEP_ALIVE=2h"] == (
        "overridden by ours (OLLAMA_KEEP_ALIVE=1h in performance.conf)")
    assert verdict["file /etc/systemd/system/ollama.service, ExecStart=/usr/local/bin/ollama serve"].startswith(
        "overridden by ours")
    assert verdict[f"file {D}/models-path.conf, Environment=OLLAMA_MODELS=/srv/ollama/models"].startswith(
        "harmless: the models directory; kept on take-over")
    assert len(lines) == 20 + 1 and lines[-1].startswith("key ollama_adopt, value False")


def test_a_foreign_drop_in_read_after_ours_overrides_it():
    hw = machine("dual_gpu", gpus=gpus(SEED003))
    data = {**group("all"), **PROFILES["dual_gpu"].settings}
    late = parse(fact_output({f"{D}/zz-site.conf": "[Service]\nEnvironment=OLLAMA_KEEP_ALIVE=5m\n"}))
    (line, _) = _foreign_problems(late, settings_from(hw, data, "dual_gpu"), hw, data, "dual_gpu", "h")
    assert line.endswith("harmful: overrides ours (OLLAMA_KEEP_ALIVE=1h in performance.conf), systemd reads "
                         "this file later")
    adopted = {**data, "ollama_adopt": True}
    assert _foreign_problems(late, settings_from(hw, adopted, "dual_gpu"), hw, adopted, "dual_gpu", "h") == []

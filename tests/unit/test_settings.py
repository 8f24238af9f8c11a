"""Settings: one declaration feeds validation and drop-ins; group data precedence is pyinfra's."""
import re
import runpy
from pathlib import Path

import pytest

from ollama_deploy.lib.dropins import DROPIN_FILES, dropins
from ollama_deploy.lib.plan import settings_from
from ollama_deploy.lib.profiles import PROFILES
from ollama_deploy.lib.settings import OllamaSettings, SettingsError, resolve
from ollama_deploy.tasks.configure import render_dropin
from tests.unit.recorded import SEED003, gpus, machine

ROOT = Path(__file__).resolve().parents[2]


def group(name):
    return {k: v for k, v in runpy.run_path(str(ROOT / "group_data" / f"{name}.py")).items()
            if not k.startswith("_")}


def test_every_dropin_setting_names_a_known_file_and_exactly_one_target():
    for key, field in OllamaSettings.model_fields.items():
        meta = field.json_schema_extra
        assert field.description, key
        if meta["dropin"]:
            assert meta["dropin"] in DROPIN_FILES, key
            assert bool(meta["env"]) != bool(meta["directive"]), key


def test_seed_000_profile_renders_performance_and_resources_dropins():
    s = settings_from(machine("cpu_xeon"), {**group("all"), **PROFILES["cpu_xeon"].settings})  # seed 000's machine
    files = dropins(s)
    assert set(files) == {"performance.conf", "resources.conf", "listen.conf"}
    assert render_dropin("listen.conf", files["listen.conf"]).endswith('Environment="OLLAMA_NO_CLOUD=true"\n')
    text = render_dropin("performance.conf", files["performance.conf"])
    assert text.startswith("# performance.conf: managed by ollama-deploy")
    assert "\n[Service]\n" in text
    assert 'Environment="OLLAMA_KV_CACHE_TYPE=q8_0"\n' in text
    assert 'Environment="OLLAMA_FLASH_ATTENTION=true"\n' in text
    assert 'Environment="OLLAMA_CONTEXT_LENGTH=8192"\n' in text
    resources = render_dropin("resources.conf", files["resources.conf"])
    assert "CPUQuota=2000%\n" in resources and "MemoryMax=20G\n" in resources and "CPUWeight=100\n" in resources
    # Placebos from the seed are not written anywhere.
    for placebo in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "cpu_avx2"):
        assert placebo not in text + resources


def test_dual_gpu_profile_writes_gpu_dropin_without_seed_placebos():
    files = dropins(settings_from(machine("dual_gpu", gpus=gpus(SEED003)), {**group("all"), **PROFILES["dual_gpu"].settings}))
    gpu = render_dropin("10-gpu.conf", files["10-gpu.conf"])
    assert 'Environment="CUDA_VISIBLE_DEVICES=0,1"\n' in gpu
    assert 'Environment="CUDA_DEVICE_ORDER=PCI_BUS_ID"\n' in gpu
    # Seed 003's spread too: Ollama spreads a model that fits no one GPU by itself.
    for placebo in ("OLLAMA_LLM_LIBRARY", "OLLAMA_NO_CUDA", "OLLAMA_NUM_GPU_LAYERS", "OLLAMA_SCHED_SPREAD"):
        assert placebo not in gpu


def test_models_dir_dropin_only_when_not_default():
    assert "models-path.conf" not in dropins(resolve({}))
    line = dropins(resolve({"ollama_models_dir": "/srv/models"}))["models-path.conf"][0]
    assert line.text == 'Environment="OLLAMA_MODELS=/srv/models"'


def test_later_layers_override_earlier_ones():
    # all.py < profile < host data < --data is pyinfra's own order; resolve sees the merged dict.
    merged = {**group("all"), **PROFILES["dgx_spark"].settings, **{"ollama_keep_alive": "45m"}}
    assert resolve(merged).ollama_keep_alive == "45m"
    assert resolve({**group("all"), **PROFILES["dgx_spark"].settings}).ollama_keep_alive == "30m"


@pytest.mark.parametrize("data, key", [
    ({"ollama_keep_alvie": "1h"}, "ollama_keep_alvie"),
    ({"ollama_num_parallel": "4"}, "ollama_num_parallel"),
    ({"ollama_kv_cache_type": "q9_9"}, "ollama_kv_cache_type"),
])
def test_bad_values_name_key_and_value(data, key):
    with pytest.raises(SettingsError) as e:
        resolve(data)
    assert len(e.value.problems) == 1
    assert key in e.value.problems[0] and repr(data[key]) in e.value.problems[0]


def test_non_setting_keys_are_ignored():
    assert resolve({"ssh_config_file": "/x", "facts_override": {"arch": "aarch64"}}) == resolve({})


@pytest.mark.parametrize("key, real", [
    ("ollama_num_threads", "num_thread"), ("ollama_num_gpu_layers", "num_gpu"),
    ("ollama_no_cuda", "ollama_cuda_visible_devices='-1'"), ("ollama_omp_num_threads", "num_thread"),
])
def test_seed_placebos_are_refused_with_the_real_equivalent(key, real):
    with pytest.raises(SettingsError) as e:
        resolve({key: 16})
    assert e.value.problems[0].startswith(f"key {key}, value 16: ") and "never read by Ollama" in e.value.problems[0]
    assert real in e.value.problems[0]


def test_unknown_model_parameter_is_refused():
    with pytest.raises(SettingsError, match="unknown parameter 'num_threads'"):
        resolve({"ollama_models": ["m"], "ollama_model_parameters": {"m": {"num_threads": 4}}})


def test_parameters_for_an_unlisted_model_are_refused():
    with pytest.raises(SettingsError, match="not in ollama_models"):
        resolve({"ollama_models": ["a"], "ollama_model_parameters": {"b": {"num_ctx": 4096}}})


def test_every_variable_the_dropins_write_is_one_ollama_logs_and_the_double_logs_the_same():
    """The drop-ins write only variables `ollama serve` reads and prints in `server config`
    (tasks/ollama_env, checked against the pinned source by tests/conformance), and the double's
    imitation of envconfig.AsMap has exactly the logged ones."""
    import sys
    sys.path.insert(0, str(ROOT / "testbed" / "double"))
    from ollama_double.env import ServerEnv

    from ollama_deploy.lib.ollama_env import READS

    logged = {name for name, var in READS.items() if var.logged}
    assert {k for k in ServerEnv({}).values() if k.startswith("OLLAMA_")} == logged
    for key, field in OllamaSettings.model_fields.items():
        env = field.json_schema_extra["env"]
        if env and env.startswith("OLLAMA_"):
            assert env in logged, key

def test_keys_that_look_like_settings_are_named_with_the_setting_they_meant():
    from ollama_deploy.lib.settings import misnamed_keys

    data = {"OLLAMA_KEEP_ALIVE": "1h", "keep_alive": "1h", "olama_keep_alive": "1h", "Ollama_Num_Parallel": 2,
            "ssh_hostname": "h", "_sudo": True, "facts_override": {}, "testbed_profile": "cpu_xeon"}
    lines = misnamed_keys(data)
    assert [line.split(",")[0] for line in lines] == ["key OLLAMA_KEEP_ALIVE", "key keep_alive", "key olama_keep_alive",
                                                     "key Ollama_Num_Parallel"]
    assert all(line.endswith(("did you mean ollama_keep_alive?", "did you mean ollama_num_parallel?")) for line in lines)
    with pytest.raises(SettingsError, match="unknown setting; did you mean ollama_keep_alive"):
        resolve({"ollama_keep_alvie": "1h"})


@pytest.mark.parametrize("key, value, reason", [
    ("ollama_models_dir", "srv/models", "an absolute, normalised path"),
    ("ollama_models_dir", "/srv/../srv/models", "an absolute, normalised path other than / (e.g. '/srv/models')"),
    ("ollama_models_dir", "/srv/my models", "' ' in a path written into systemd and tmpfiles.d lines"),
    ("ollama_prefix", "/opt/%h", "'%' in a path"),
    ("ollama_origins", ["http://a.example\nEnvironment=OLLAMA_HOST=0.0.0.0"], "control character '\\n' cannot be "
                                                                              "written into listen.conf"),
])
def test_values_that_would_break_their_file_are_refused(key, value, reason):
    with pytest.raises(SettingsError, match=re.escape(reason)):
        resolve({key: value})


def test_environment_values_are_quoted_and_escaped_for_systemd():
    s = resolve({"ollama_origins": ['http://a.example/%7Eme', 'http://b.example/"q"\\x', "http://c d"]})
    (line,) = [x for x in dropins(s)["listen.conf"] if x.value.startswith("OLLAMA_ORIGINS=")]
    assert line.text == 'Environment="OLLAMA_ORIGINS=http://a.example/%%7Eme,http://b.example/\\"q\\"\\\\x,http://c d"'


@pytest.mark.parametrize("key, value, ok", [
    ("ollama_cpu_quota", "2000%", True), ("ollama_cpu_quota", "12.5%", True), ("ollama_cpu_quota", "0.25%", True),
    ("ollama_cpu_quota", "12.555%", False), ("ollama_cpu_quota", "0%", False), ("ollama_cpu_quota", "20", False),
    ("ollama_memory_max", "20G", True), ("ollama_memory_max", "1.5G", True), ("ollama_memory_max", "2P", True),
    ("ollama_memory_max", "60%", True), ("ollama_memory_max", "infinity", True), ("ollama_memory_max", "100.5%", False),
    ("ollama_memory_max", "20GB", False), ("ollama_memory_max", "20 G", False), ("ollama_memory_max", "-1", False),
])
def test_resource_directives_take_exactly_the_forms_systemd_takes(key, value, ok):
    """systemd.resource-control(5): CPUQuota= a percentage (two decimals at most); MemoryMax= bytes with a
    1024-based suffix, a percentage of RAM, or infinity. A refusal lists the accepted forms."""
    if ok:
        assert getattr(resolve({key: value}), key) == value
        return
    with pytest.raises(SettingsError, match="takes .*(percentage|bytes)") as e:
        resolve({key: value})
    assert "e.g." in str(e.value)


def test_verify_reads_resource_values_as_systemctl_shows_them():
    from ollama_deploy.tasks.verify import _resource_check

    assert _resource_check("CPUQuota", "12.5%", "125ms", 0)[1] and _resource_check("CPUQuota", "9000%", "1min 30s", 0)[1]
    assert not _resource_check("CPUQuota", "2000%", "2s", 0)[1]
    assert _resource_check("MemoryMax", "1.5G", str(3 * 2**29), 0)[1] and _resource_check("MemoryMax", "infinity",
                                                                                           "infinity", 0)[1]
    assert _resource_check("MemoryMax", "50%", str(2**29 - 4096), 2**30)[1]  # systemd's own view of RAM


def test_valid_but_dubious_settings_are_named():
    from ollama_deploy.lib.plan import dubious

    hw = machine("cpu_xeon")
    assert dubious(settings_from(hw, {}), hw) == []
    notes = dubious(settings_from(hw, {"ollama_keep_alive": "0", "ollama_num_parallel": hw.threads + 1,
                                       "ollama_kv_cache_type": "q4_0", "ollama_no_cloud": False}), hw)
    assert [n.split(" ", 1)[0] for n in notes] == ["ollama_keep_alive", "ollama_num_parallel", "ollama_kv_cache_type",
                                                   "ollama_no_cloud"]

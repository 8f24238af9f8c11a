"""Verify's verdict on each OLLAMA_* variable systemd gives Ollama, against its `server config` line."""
import json

from ollama_deploy.lib.checked import parse_state
from ollama_deploy.lib.plan import HostPlan, settings_from
from ollama_deploy.tasks.verify import (
    check_compute,
    check_settings,
    check_threads,
    environment_items,
    parse_server_config,
)
from tests.unit.recorded import SEED003, gpus, machine

# What a real 0.32.15 logs (a few keys of its server config map are enough for the verdicts).
LOGGED = {"OLLAMA_NO_CLOUD": "true", "OLLAMA_KEEP_ALIVE": "5m0s", "OLLAMA_HOST": "http://127.0.0.1:11434"}


def verdicts(*extra_env: str) -> dict[str, dict]:
    hw = machine("cpu_xeon")
    plan = HostPlan("cpu_xeon", hw, settings_from(hw, {}))
    environment = ["OLLAMA_NO_CLOUD=true", *extra_env]
    return {c["setting"]: c for c in check_settings(plan, environment, LOGGED, {})}


def test_a_variable_ollama_never_reads_fails():
    check = verdicts("OLLAMA_NUM_THREADS=16")["OLLAMA_NUM_THREADS"]
    assert not check["ok"] and "Ollama never reads it" in check["where"]


def test_variables_the_server_reads_without_logging_them_pass():
    found = verdicts("OLLAMA_EXPERIMENT=client2", "OLLAMA_CLOUD_BASE_URL=https://c.example",
                     "OLLAMA_LLAMA_CPP_COMPAT=0")
    for name in ("OLLAMA_EXPERIMENT", "OLLAMA_CLOUD_BASE_URL", "OLLAMA_LLAMA_CPP_COMPAT"):
        assert found[name]["ok"] and "never logged" in found[name]["where"], name


def test_a_client_only_variable_in_the_servers_unit_fails_saying_so():
    check = verdicts("OLLAMA_AUTH=true")["OLLAMA_AUTH"]
    assert not check["ok"] and "only by the ollama command-line client" in check["where"]


def _offload(profile, journal, size, vram):
    hw = machine(profile, gpus=gpus(SEED003)) if profile == "dual_gpu" else machine(profile)
    plan = HostPlan(profile, hw, settings_from(hw, {}, profile))
    ps = {"models": [{"name": "m:latest", "size": size, "size_vram": vram}]}
    (check,) = [c for c in check_compute(plan, journal, ps) if c["setting"] == "offload m:latest"]
    return check


CPU_COMPUTE = 'time=t level=INFO source=types.go:60 msg="inference compute" id=cpu library=cpu compute=""\n'
CUDA_COMPUTE = 'time=t level=INFO source=types.go:42 msg="inference compute" id=GPU-1 library=CUDA compute=6.1\n'
UNPARSED = ('time=t level=WARN source=llama_server.go:1067 msg="llama-server VRAM tracking: no per-device buffer '
            'sizes were parsed from llama-server logs."\n')


def test_the_file_size_fallback_is_not_called_full_gpu():
    # Ollama reports the file size as size and size_vram when it parsed no buffer lines.
    cpu = _offload("cpu_xeon", CPU_COMPUTE, 7_612_661, 7_612_661)
    assert cpu["ok"] and cpu["seen"].startswith("CPU ")
    gpu = _offload("dual_gpu", CUDA_COMPUTE + UNPARSED, 7_612_661, 7_612_661)
    assert gpu["ok"] and gpu["seen"].startswith("unknown")
    assert _offload("dual_gpu", CUDA_COMPUTE, 7_612_661, 7_612_661)["seen"].startswith("full GPU")
    assert not _offload("dual_gpu", CUDA_COMPUTE, 7_612_661, 0)["ok"]  # parsed, and all on the CPU


# verify reads back every value exactly: Ollama's `server config` line (a Go-quoted slog value) and
# `systemctl show -p Environment` (items with spaces or quotes in double quotes, C-escaped).
def test_server_config_values_are_unquoted_as_slog_quoted_them():
    env = 'map[OLLAMA_HOST:http://127.0.0.1:11434 OLLAMA_ORIGINS:[http://a/"x" http://b c] OLLAMA_KEEP_ALIVE:5m0s]'
    quoted = env.replace("\\", "\\\\").replace('"', '\\"')  # strconv.Quote, as slog's text handler writes it
    line = f'time=2026-12-03T18:00:00.000Z level=INFO source=routes.go:1 msg="server config" env="{quoted}"'
    assert parse_server_config(line) == {"OLLAMA_HOST": "http://127.0.0.1:11434",
                                         "OLLAMA_ORIGINS": '[http://a/"x" http://b c]', "OLLAMA_KEEP_ALIVE": "5m0s"}
    assert parse_server_config('msg="server config"') == {}


def test_systemctl_show_items_with_spaces_and_quotes():
    shown = 'OLLAMA_KEEP_ALIVE=1h "OLLAMA_ORIGINS=http://a/\\"x\\",http://b c" OLLAMA_MODELS=/srv/m'
    assert environment_items(shown) == ["OLLAMA_KEEP_ALIVE=1h", 'OLLAMA_ORIGINS=http://a/"x",http://b c',
                                        "OLLAMA_MODELS=/srv/m"]


def test_the_model_loading_checks_are_skipped_only_for_what_they_passed_against():
    tags = json.dumps({"models": [{"name": "m:latest", "digest": "aa"}]})
    now, passed = parse_state(f"inv1\nnone\n{tags}", ["m"], "p", True)
    assert passed == "none" and now.startswith("inv1 ")
    assert parse_state(f"inv1\n{now}\n{tags}", ["m"], "p", True) == (now, now)
    differ = [parse_state(f"inv2\n{now}\n{tags}", ["m"], "p", True),  # Ollama restarted
              parse_state(f"inv1\n{now}\n{tags.replace('aa', 'bb')}", ["m"], "p", True),  # the model re-pulled
              parse_state(f"inv1\n{now}\n{tags}", ["m", "e"], "p", True),  # another model to check
              parse_state(f"inv1\n{now}\n{tags}", ["m"], "q", True),  # another prompt
              parse_state(f"inv1\n{now}\nnot json", ["m"], "p", True)]  # an API that does not answer JSON
    assert all(n != p for n, p in differ)
    assert parse_state(f"\n{now}\n", ["m"], "p", True)[0] == ""  # no process: never "unchanged"
    assert parse_state("", ["m"], "p", True) == ("", "none")


SYSTEM_INFO = "cmn  common_param: system_info: n_threads = {} (n_threads_batch = {}) / 2 | CPU : AVX2 = 1 |"


def _threads(data: dict, *started: int, loaded: bool = True) -> list[dict]:
    hw = machine("cpu_xeon")
    plan = HostPlan("cpu_xeon", hw, settings_from(hw, {"ollama_models": ["m", "t"], **data}))
    return check_threads(plan, "\n".join(SYSTEM_INFO.format(n, n) for n in started), loaded)


def test_the_thread_count_is_read_from_the_last_llama_server_start():
    assert _threads({"ollama_llama_threads": 1}, 2, 1)[0]["ok"]
    (wrong,) = _threads({"ollama_llama_threads": 1}, 1, 2)  # the last start ignored it
    assert not wrong["ok"] and wrong["seen"] == "n_threads = 2" and wrong["want"] == "n_threads = 1"
    (none,) = _threads({"ollama_llama_threads": 1})  # a model was to be loaded, none started
    assert not none["ok"] and none["seen"] == "no llama-server started since Ollama's start"


def test_a_models_own_num_thread_wins_and_no_setting_means_no_check():
    tuned = {"ollama_llama_threads": 1, "ollama_model_parameters": {"t": {"num_thread": 3}}}
    assert _threads(tuned, 3)[0]["ok"] and not _threads(tuned, 2)[0]["ok"]
    assert _threads({}, 2) == [] and _threads({"ollama_llama_threads": 1}, loaded=False) == []

"""Verify's verdict on each OLLAMA_* variable systemd gives Ollama, against its `server config` line."""
from tasks.plan import HostPlan, settings_from
from tasks.verify import check_settings
from tests.unit.recorded import machine

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

"""verify.py proves settings took effect, and fails naming what did not."""
import json
import re
from datetime import UTC, datetime

import pytest

from testbed.deployrun import PROJECT_ROOT, run_deploy
from tests.deploy.hosts import ssh


def _verify(tb, *extra):
    return run_deploy(tb.inventory_path, *extra, deploy_file="verify.py")


def test_verify_passes_on_every_converged_host(deploy_testbed, first_run):
    assert first_run.rc == 0, first_run.stderr[-3000:]
    run = _verify(deploy_testbed)
    assert run.rc == 0, run.stderr[-3000:]
    for h in deploy_testbed.hosts:
        report = json.loads((PROJECT_ROOT / "reports/verify" / f"{h.name}.json").read_text())
        assert report["ok"] and report["exposure"] <= 1.2
        seen = {c["setting"] for c in report["checks"]}
        assert "OLLAMA_KEEP_ALIVE" in seen or "OLLAMA_NUM_PARALLEL" in seen  # settings really checked
        if h.profile != "cpu_xeon":
            assert any(c["setting"] == "inference compute" and c["ok"] for c in report["checks"])


@pytest.fixture(params=["cpu_xeon", "dgx_spark"])  # real Ollama, and the double
def manual_dropin(deploy_testbed, request):
    """An operator's hand-written drop-in setting a variable Ollama never reads (seed 001's)."""
    host = next(h for h in deploy_testbed.hosts if h.profile == request.param).name
    path = "/etc/systemd/system/ollama.service.d/zz-manual.conf"
    ssh(deploy_testbed, host, f"printf '[Service]\\nEnvironment=OLLAMA_NUM_THREADS=16\\n' > {path}; "
                               "systemctl daemon-reload; systemctl restart ollama")
    yield host
    ssh(deploy_testbed, host, f"rm -f {path}; systemctl daemon-reload; systemctl restart ollama")


def test_verify_names_a_variable_ollama_ignores(deploy_testbed, first_run, manual_dropin):
    run = _verify(deploy_testbed, "--limit", manual_dropin)
    assert run.rc != 0
    assert f"{manual_dropin}: verify failed: OLLAMA_NUM_THREADS" in run.stderr
    assert "Ollama never reads it" in run.stderr


@pytest.fixture
def gpu_lost(deploy_testbed):
    """The GPU host's driver stops answering (as after a bad suspend/resume); Ollama restarts."""
    host = next(h for h in deploy_testbed.hosts if h.profile == "dual_gpu").name
    ssh(deploy_testbed, host, "mkdir -p /run/nvidia-smi-replay && touch /run/nvidia-smi-replay/fail && "
                               "systemctl restart ollama")
    yield host
    ssh(deploy_testbed, host, "rm -f /run/nvidia-smi-replay/fail; systemctl restart ollama")


def test_verify_says_a_gpu_host_fell_back_to_cpu_and_why(deploy_testbed, first_run, gpu_lost):
    run = _verify(deploy_testbed, "--limit", gpu_lost)
    assert run.rc != 0
    assert f"{gpu_lost}: verify failed: inference compute: want CUDA, seen cpu" in run.stderr
    assert "GPU discovery failed" in run.stderr and "nvidia_uvm" in run.stderr
    assert "Traceback" not in run.stderr
    report = json.loads((PROJECT_ROOT / "reports/verify" / f"{gpu_lost}.json").read_text())
    offload = [c for c in report["checks"] if c["setting"].startswith("offload")]
    assert offload and all(c["seen"].startswith("CPU") and not c["ok"] for c in offload)


def test_the_deploy_leaves_the_hosts_keep_alive_on_the_loaded_model(deploy_testbed, first_run):
    """No request the deploy sends may set keep_alive: a request's value replaces the loaded model's."""
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    try:
        run = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_keep_alive=1h")
        assert run.rc == 0, run.stderr[-3000:]
        (loaded,) = json.loads(ssh(tb, host, "curl -fsS 127.0.0.1:11434/api/ps").stdout)["models"]
        expires = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", loaded["expires_at"]).replace("Z", "+00:00"))
        left = (expires - datetime.now(UTC)).total_seconds()
        assert 55 * 60 < left <= 3600, loaded["expires_at"]  # the host's 1h, not a request's 5m
    finally:
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0


def test_verify_fails_a_host_whose_ollama_may_call_ollama_com(deploy_testbed, first_run):
    """A hand-written drop-in turns cloud features back on: real Ollama then calls ollama.com at start."""
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    path = "/etc/systemd/system/ollama.service.d/zz-cloud.conf"
    ssh(tb, host, f"printf '[Service]\\nEnvironment=OLLAMA_NO_CLOUD=false\\n' > {path}; "
                  "systemctl daemon-reload; systemctl restart ollama")
    try:
        run = _verify(tb, "--limit", host)
    finally:
        ssh(tb, host, f"rm -f {path}; systemctl daemon-reload; systemctl restart ollama")
    assert run.rc != 0
    assert "no calls to ollama.com: want cloud disabled: true, seen cloud disabled: false" in run.stderr


def test_a_model_too_big_for_one_gpu_goes_across_both_and_the_overhead_reserves_nothing(deploy_testbed, first_run,
                                                                                        tmp_path):
    """On the GPU double host (seed 003's GPUs of 8 and 6 GiB): testbed/small at 65536 tokens (7 GiB
    by Ollama's estimate) fits neither GPU's 80% but both together, which Ollama does by itself
    without OLLAMA_SCHED_SPREAD (server/sched.go); and OLLAMA_GPU_OVERHEAD, even 5.5 GiB of each
    GPU, holds nothing back from placement: it enters only a log line and the default context tier."""
    from tests.deploy.hosts import inventory_with

    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "dual_gpu")
    overhead = 11 * 2**29  # 5.5 GiB
    inventory = inventory_with(tb, tmp_path, host, ollama_models=["testbed/small"], ollama_context_length=65536,
                               ollama_gpu_overhead=overhead)
    run = run_deploy(inventory, "--limit", host)
    assert run.rc == 0, run.stderr[-3000:]
    gpu_conf = ssh(tb, host, "cat /etc/systemd/system/ollama.service.d/10-gpu.conf").stdout
    assert f"OLLAMA_GPU_OVERHEAD={overhead}" in gpu_conf and "OLLAMA_SCHED_SPREAD" not in gpu_conf
    journal = ssh(tb, host, "journalctl -u ollama -o cat --no-pager | grep -a 'msg=\"starting llama-server\"' "
                            "| tail -1").stdout
    assert "--model" in journal and "--split-mode none" not in journal, journal  # not one GPU: both
    report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
    (offload,) = [c for c in report["checks"] if c["setting"] == "offload testbed/small:latest"]
    assert offload["ok"] and offload["seen"].startswith("full GPU"), offload
    back = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_prune_models=true")
    assert back.rc == 0, back.stderr[-3000:]


def test_sizes_ollama_could_not_parse_are_not_called_full_gpu(deploy_testbed, first_run):
    """When no llama-server buffer line parses, /api/ps gives the model file's size as both size and
    size_vram (llm/llama_server.go MemorySize): verify says the offload is unknown, not "full GPU".
    Injected on the GPU double host with a llama-server whose buffer lines have another format."""
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "dual_gpu")
    flag = "/run/ollama-double/llama-server-log-format-changed"
    ssh(tb, host, f"mkdir -p {flag.rsplit('/', 1)[0]} && touch {flag} && systemctl restart ollama")
    try:
        run = _verify(tb, "--limit", host)
    finally:
        ssh(tb, host, f"rm -f {flag}; systemctl restart ollama")
    assert run.rc == 0, run.stderr[-3000:]
    report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
    offload = [c for c in report["checks"] if c["setting"].startswith("offload")]
    assert offload and all(c["seen"].startswith("unknown (Ollama parsed no buffer sizes") for c in offload), offload
    size, vram = re.search(r"\((\d+)/(\d+) bytes in VRAM\)", offload[0]["seen"]).groups()
    assert size == vram


def test_values_with_percent_quotes_and_spaces_are_written_escaped_and_read_back_exactly(deploy_testbed, first_run,
                                                                                        tmp_path):
    """Environment= expands % and ends a value at a bare quote; `systemctl show` and Ollama's log line
    quote such values. Origins holding all three go through as written, and verify passes (a
    correct host is not rolled back)."""
    from tests.deploy.hosts import inventory_with

    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    origins = ["http://intranet.example/%7Eops", 'http://app.example/"x"', "http://tools.example/a b"]
    run = run_deploy(inventory_with(tb, tmp_path, host, ollama_origins=origins), "--limit", host)
    try:
        assert run.rc == 0, run.stderr[-3000:]
        shown = ssh(tb, host, "systemctl show -p Environment ollama").stdout
        assert '"OLLAMA_ORIGINS=http://intranet.example/%7Eops,http://app.example/\\"x\\",http://tools.example/a b"' \
            in shown, shown
        report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
        (check,) = [c for c in report["checks"] if c["setting"] == "OLLAMA_ORIGINS"]
        assert check["ok"] and 'http://app.example/"x" http://tools.example/a b' in check["seen"], check
    finally:
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0


def test_a_fractional_cpu_quota_and_a_memory_percentage_apply_and_verify(deploy_testbed, first_run, tmp_path):
    """CPUQuota=150.5% is shown as 1.505000s (per second) and MemoryMax=60% as bytes of systemd's own view
    of RAM: verify reads both back (and a correct host is not rolled back)."""
    from tests.deploy.hosts import inventory_with

    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    run = run_deploy(inventory_with(tb, tmp_path, host, ollama_cpu_quota="150.5%", ollama_memory_max="60%"),
                     "--limit", host)
    try:
        assert run.rc == 0, run.stderr[-3000:]
        report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
        seen = {c["setting"]: c for c in report["checks"]}
        assert seen["CPUQuota"]["ok"] and seen["CPUQuota"]["seen"] == "1.505000s", seen["CPUQuota"]
        assert seen["MemoryMax"]["ok"] and seen["MemoryMax"]["seen"].isdigit(), seen["MemoryMax"]
    finally:
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0

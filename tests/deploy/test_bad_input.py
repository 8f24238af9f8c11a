"""Bad input stops the run before any host changes: one line per problem naming host, key, value, reason."""

import pytest

from testbed.deployrun import run_deploy
from tests.deploy.hosts import ssh

ALL = ("cpu_xeon", "dual_gpu", "dgx_spark")


def _fingerprint(tb):
    """Everything the deploy could touch first: unit, drop-ins, binary marker, service pid."""
    cmd = ("stat -c '%n %Y %s' /etc/systemd/system/ollama.service /etc/systemd/system/ollama.service.d/* "
           "/usr/local/lib/ollama/.ollama-deploy-release 2>/dev/null; systemctl show -p MainPID --value ollama")
    return {h.name: ssh(tb, h.name, cmd).stdout for h in tb.hosts}


CASES = [
    # (--data, key, value as shown, reason, profiles of the hosts that must report it)
    ("ollama_keep_alvie=1h", "ollama_keep_alvie", "'1h'", "unknown setting; did you mean ollama_keep_alive?", ALL),
    # Keys that look like settings but are not read as one (another case, no prefix, a misspelt prefix).
    ("OLLAMA_KEEP_ALIVE=1h", "OLLAMA_KEEP_ALIVE", "'1h'", "did you mean ollama_keep_alive?", ALL),
    ("num_parallel=2", "num_parallel", "2", "did you mean ollama_num_parallel?", ALL),
    ("olama_flash_attention=true", "olama_flash_attention", "True", "did you mean ollama_flash_attention?", ALL),
    ("ollama_num_parallel=four", "ollama_num_parallel", "'four'", "valid integer", ALL),
    ("ollama_memory_max=20GB", "ollama_memory_max", "'20GB'", "did you mean 20G?", ALL),
    ("ollama_keep_alive=1.5", "ollama_keep_alive", "1.5", "silently keeps 5m", ALL),
    ("ollama_keep_alive=5min", "ollama_keep_alive", "'5min'", "silently keeps 5m", ALL),
    ("ollama_num_threads=16", "ollama_num_threads", "16", "for every model set ollama_llama_threads", ALL),
    ("ollama_llama_threads=0", "ollama_llama_threads", "0", "at least 1", ALL),
    ("ollama_llama_threads=999", "ollama_llama_threads", "999", "above the host's", ALL),
    ("ollama_cpu_quota=9900%", "ollama_cpu_quota", "'9900%'", "above the host's", ALL),
    ("ollama_memory_max=4096G", "ollama_memory_max", "'4096G'", "above the host's RAM", ALL),
    ("ollama_cuda_visible_devices=0,2", "ollama_cuda_visible_devices", "'0,2'", "GPU 2 does not exist",
     ("dual_gpu", "dgx_spark")),
    ("ollama_cuda_visible_devices=0,2", "ollama_cuda_visible_devices", "'0,2'", "without NVIDIA GPUs",
     ("cpu_xeon",)),
    ("ollama_llm_library=cuda", "ollama_llm_library", "'cuda'", "run on the CPU", ALL),
    (("ollama_cuda_visible_devices=1,0", "ollama_cuda_device_order=FASTEST_FIRST"), "ollama_cuda_visible_devices",
     "'1,0'", "not nvidia-smi's order: name the GPUs by UUID", ("dual_gpu",)),
    ('ollama_cuda_visible_devices="-1"', "ollama_cuda_visible_devices", "'-1'", "also set ollama_vulkan=false",
     ("dual_gpu",)),
    ("ollama_llm_library=rocm_v7_2", "ollama_llm_library", "'rocm_v7_2'",
     "ships in ollama-linux-amd64-rocm.tar.zst, which this tool does not install", ("dual_gpu",)),
    ('ollama_models=["testbed/tiny","testbed/tiny:latest"]', "ollama_models",
     "['testbed/tiny', 'testbed/tiny:latest']", "listed twice", ALL),
    ('ollama_models=["Bad Name!"]', "ollama_models", "['Bad Name!']", "model 'Bad Name!'", ALL),
    ("ollama_kv_cache_type=q9_9", "ollama_kv_cache_type", "'q9_9'", "'q5_0' or 'q5_1'", ALL),
    # The CPU profile runs a q8_0 cache: a model with head size 16 would never load there.
    ('ollama_models=["testbed/real-tiny-hd16"]', "ollama_kv_cache_type", "'q8_0'",
     "testbed/real-tiny-hd16 has key head size 16, value head size 16, which q8_0's block of 32 does not divide",
     ("cpu_xeon",)),
    # Too big for every host's model; the real 2-layer GGUF (trained at 4096) needs 0.5 GiB of KV cache.
    (("ollama_context_length=131072", "ollama_num_parallel=256", "ollama_memory_max=256M"), "ollama_models", "",
     "needs", ALL),
    ("ollama_num_parallel=257", "ollama_num_parallel", "257", "LLAMA_MAX_SEQ", ALL),
    ("ollama_host=0.0.0.0", "ollama_host", "'0.0.0.0'", "needs ollama_allowed_networks", ALL),
    ("ollama_host=127.0.0.1:80", "ollama_host", "'127.0.0.1:80'", "below 1024", ALL),
    ("ollama_host=http://127.0.0.1", "ollama_host", "'http://127.0.0.1'", "port 80 is below 1024", ALL),
    ("ollama_host=127.0.0.1:0", "ollama_host", "'127.0.0.1:0'", "random port", ALL),
    ('ollama_origins=["*"]', "ollama_origins", "['*']", "any web page", ALL),
    # Values that would break the file they are written into (a path field ends at whitespace, %
    # starts a specifier, a line break ends the directive).
    ("ollama_models_dir=/srv/my models", "ollama_models_dir", "'/srv/my models'", "' ' in a path", ALL),
    ("ollama_models_dir=srv/models", "ollama_models_dir", "'srv/models'", "an absolute, normalised path", ALL),
    ('ollama_origins=["http://a.example\\nEnvironment=OLLAMA_HOST=0.0.0.0"]', "ollama_origins", "[",
     "control character '\\n' cannot be written into listen.conf", ALL),
    (("ollama_version=0.32.99", "ollama_release_sha256={}"), "ollama_release_base_url", "'http://",
     "v0.32.99/sha256sum.txt: 404", ALL),
    ("ollama_models_local_dir=/srv/no-such-models", "ollama_models_local_dir", "'/srv/no-such-models'",
     "is not in /srv/no-such-models", ALL),
    ("ollama_release_base_url=http://user:pw@mirror.invalid/r", "ollama_release_base_url",
     "'http://user:pw@mirror.invalid/r'", "OLLAMA_DEPLOY_MIRROR_TOKEN", ALL),
]


@pytest.mark.parametrize("data, key, value, reason, profiles", CASES, ids=[str(c[0])[:40] for c in CASES])
def test_bad_setting_fails_before_any_change(deploy_testbed, data, key, value, reason, profiles):
    before = _fingerprint(deploy_testbed)
    items = (data,) if isinstance(data, str) else data
    run = run_deploy(deploy_testbed.inventory_path, *[arg for item in items for arg in ("--data", item)])
    assert run.rc != 0
    expected = {f"host {h.name}" for h in deploy_testbed.hosts if h.profile in profiles}
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip().startswith("host ")]
    matching = {line.split(":")[0] for line in lines if f"key {key}, value {value}" in line and reason in line}
    assert expected <= matching, "\n".join(lines) or run.stderr[-2000:]
    assert _fingerprint(deploy_testbed) == before


def test_quantized_kv_without_flash_attention_is_refused(deploy_testbed):
    run = run_deploy(deploy_testbed.inventory_path, "--data", "ollama_kv_cache_type=q8_0",
                     "--data", "ollama_flash_attention=false")
    assert run.rc != 0
    lines = [line for line in run.stderr.splitlines() if line.strip().startswith("host ")]
    assert len(lines) == len(deploy_testbed.hosts)
    assert all("quantized V cache without flash attention" in line for line in lines)


def test_host_in_no_profile_group_is_refused(deploy_testbed, tmp_path):
    host = deploy_testbed.hosts[0]
    inventory = tmp_path / "noprofile.py"
    misspelt = host.profile.replace("_", "-")  # cpu-xeon: a group pyinfra accepts, but no profile
    inventory.write_text(f"exec(open({str(deploy_testbed.inventory_path)!r}).read())\n"
                         f"{misspelt.replace('-', '')} = [h for h in {host.profile} if h[0] == {host.name!r}]\n"
                         f"{host.profile} = [h for h in {host.profile} if h[0] != {host.name!r}]\n")
    run = run_deploy(inventory)
    assert run.rc != 0
    assert f"host {host.name}: key profile, value []: the host is in no profile group" in run.stderr
    assert f"group {misspelt.replace('-', '')!r}: did you mean {host.profile}?" in run.stderr

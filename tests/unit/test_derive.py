"""Settings derived from hardware, and checks of settings against it (pure, no host)."""
import pytest

from ollama_deploy.lib.derive import derive
from ollama_deploy.lib.plan import _hardware_problems, settings_from
from tests.unit.recorded import GB10, SEED003, gpus, machine


def test_seed000_xeon_gets_the_seeds_quota_and_memory_limit():
    assert derive(machine("cpu_xeon")) == {"ollama_cpu_quota": "2000%", "ollama_memory_max": "20G"}


def test_seed002_twelve_threads_29gb():
    derived = derive(machine("cpu_xeon", physical_cores=12, threads=12, mem_total_mib=29 * 1024))
    assert derived == {"ollama_cpu_quota": "1000%", "ollama_memory_max": "18G"}


def test_two_threads_keep_one_for_the_os():
    assert derive(machine("cpu_xeon", physical_cores=1, threads=2))["ollama_cpu_quota"] == "100%"


def test_dual_gpu_lists_gpus_in_pci_order_whatever_the_query_order():
    shuffled = tuple(reversed(gpus(SEED003)))
    derived = derive(machine("dual_gpu", gpus=shuffled))
    by_bus = sorted(SEED003["gpus"], key=lambda g: g["pci.bus_id"])
    assert derived["ollama_cuda_visible_devices"] == ",".join(str(g["index"]) for g in by_bus)
    assert derived["ollama_cuda_device_order"] == "PCI_BUS_ID"
    assert "ollama_cpu_quota" not in derived and "ollama_flash_attention" not in derived


def test_gb10_turns_flash_attention_off():
    assert derive(machine("dgx_spark", gpus=gpus(GB10)))["ollama_flash_attention"] is False


def test_data_overrides_derived_values():
    s = settings_from(machine("cpu_xeon"), {"ollama_cpu_quota": "800%", "ssh_user": "x"})
    assert s.ollama_cpu_quota == "800%" and s.ollama_memory_max == "20G"


@pytest.mark.parametrize("data, profile, fragment", [
    ({"ollama_cpu_quota": "2500%"}, "cpu_xeon", "above the host's 24 threads (at most 2400%)"),
    ({"ollama_memory_max": "40G"}, "cpu_xeon", "above the host's RAM (32.0 GiB)"),
    ({"ollama_llama_threads": 25}, "cpu_xeon", "above the host's 24 threads (ggml's threads wait"),
    ({"ollama_sched_spread": True}, "cpu_xeon", "does nothing on a host without NVIDIA GPUs"),
    ({"ollama_cuda_visible_devices": "0,3"}, "dual_gpu", "GPU 3 does not exist"),
    ({"ollama_llm_library": "vulkan"}, "dgx_spark", "no such library directory in the aarch64 release"),
])
def test_settings_the_hardware_cannot_honour_are_refused(data, profile, fragment):
    found = {"dual_gpu": gpus(SEED003), "dgx_spark": gpus(GB10)}.get(profile, ())
    hw = machine(profile, gpus=found)
    problems = _hardware_problems(settings_from(hw, data), hw, profile)
    assert len(problems) == 1 and fragment in problems[0]
    assert problems[0].startswith(f"key {next(iter(data))}, value {next(iter(data.values()))!r}: ")


def test_gpu_profile_without_visible_gpus_names_the_driver_problem():
    hw = machine("dual_gpu", gpu_problem="NVIDIA-SMI has failed because it couldn't communicate with the driver")
    problems = _hardware_problems(settings_from(hw, {}), hw, "dual_gpu")
    assert any("expects NVIDIA GPUs" in p and "couldn't communicate" in p for p in problems)


def test_uuid_tokens_are_accepted():
    hw = machine("dual_gpu", gpus=gpus(SEED003))
    data = {"ollama_cuda_visible_devices": SEED003["gpus"][1]["uuid"]}
    assert _hardware_problems(settings_from(hw, data), hw, "dual_gpu") == []


def test_local_runs_ask_nvml_and_keep_nvidia_smi_view_without_a_driver():
    from types import SimpleNamespace

    from ollama_deploy.lib.plan import _local_nvml
    hw = machine("dual_gpu", gpus=gpus(SEED003))
    # This machine has no NVIDIA driver: the real pynvml raises, and what nvidia-smi said stands.
    assert _local_nvml(SimpleNamespace(name="@local"), hw) == hw
    cpu = machine("cpu_xeon")
    assert _local_nvml(SimpleNamespace(name="@local"), cpu) == cpu
    assert _local_nvml(SimpleNamespace(name="gpu-box"), hw) is hw  # remote hosts: nvidia-smi only


def test_gpu_profile_host_with_gpus_gone_is_not_sized_as_a_cpu_host():
    # Driver down: nvidia-smi fails, but the host is still a GPU host; no CPU limits appear.
    assert derive(machine("dual_gpu", gpu_problem="driver"), "dual_gpu") == {}
    assert "ollama_cpu_quota" in derive(machine("dual_gpu"), "cpu_xeon")

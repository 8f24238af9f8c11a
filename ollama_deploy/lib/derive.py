"""Settings the hardware implies. They fill only keys no data layer sets: group data, host data and
`--data` override them. Profiles (lib/profiles.py) therefore leave these keys out, and the seeds' figures
come back out of the seeds' hardware (20 of 24 threads → CPUQuota=2000%, 32 GB → MemoryMax=20G).

Example:
    derive(hardware)   # {"ollama_cpu_quota": "2000%", "ollama_memory_max": "20G"} on the seed 000 Xeon
"""
from __future__ import annotations

from typing import Any

from ollama_deploy.lib.hardware import Hardware
from ollama_deploy.lib.profiles import GPU_PROFILES

# Seed 001: flash attention misbehaved on the GB10 (sm_121), so it is off unless asked for.
FLASH_ATTENTION_OFF_COMPUTE = ("12.1",)


def os_reserve(threads: int) -> int:
    """CPUs left to the OS and sshd: a sixth, at least one (seed 000 kept 4 of 24)."""
    return max(1, threads // 6)


def derive(hw: Hardware, profile: str | None = None) -> dict[str, Any]:
    """`profile` keeps a GPU host whose GPUs are not showing (driver down) from being sized as a CPU host."""
    values: dict[str, Any] = {}
    if not hw.gpus and profile in GPU_PROFILES:
        return values
    if not hw.gpus:
        values["ollama_cpu_quota"] = f"{(hw.threads - os_reserve(hw.threads)) * 100}%"
        # 5/8 of RAM for Ollama, the rest for the OS and page cache (seed 000: 20G of 32 GB).
        values["ollama_memory_max"] = f"{max(1, hw.mem_total_mib * 5 // 8 // 1024)}G"
        return values
    # With PCI_BUS_ID ordering, CUDA's indices are nvidia-smi's, which follow the PCI bus.
    values["ollama_cuda_device_order"] = "PCI_BUS_ID"
    values["ollama_cuda_visible_devices"] = ",".join(str(g.index) for g in sorted(hw.gpus, key=lambda g: g.bus_id))
    if any(g.compute_cap in FLASH_ATTENTION_OFF_COMPUTE for g in hw.gpus):
        values["ollama_flash_attention"] = False
    return values

"""Device and memory records shared by GPU discovery and the scheduler.

Discovery fills them in, the scheduler places models by them and both log
them in Ollama's units (format.HumanBytes2).  A module of their own, so the
scheduler does not depend on how devices are discovered.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclasses.dataclass
class Device:
    id: str
    library: str  # "CUDA" or "Vulkan"
    name: str  # backend device name, e.g. CUDA0
    description: str
    libdir: str  # variant directory name, e.g. cuda_v13
    compute: tuple[int, int]
    driver: tuple[int, int]
    nvidia_driver_major: int
    pci_id: str
    integrated: bool
    total: int
    free: int
    uuid: str = ""
    filter_id: str = ""

    def compute_str(self) -> str:
        return f"{self.compute[0]}.{self.compute[1]}"

    def driver_str(self) -> str:
        return f"{self.driver[0]}.{self.driver[1]}"

    def minimum_memory(self) -> int:
        return 457 * MIB  # ml.DeviceInfo.MinimumMemory (non-Metal)

    def flash_attention_supported(self) -> bool:
        """ml.FlashAttentionSupported for one device."""
        if self.library == "Vulkan":
            return True
        if self.library != "CUDA" or self.compute[0] < 6 or self.compute == (7, 2):
            return False
        return self.driver[0] == 0 or self.driver[0] >= 7


@dataclasses.dataclass
class SystemInfo:
    total: int
    free: int
    free_swap: int


def human_bytes2(b: int) -> str:
    """format.HumanBytes2."""
    if b >= GIB:
        return f"{b / GIB:.1f} GiB"
    if b >= MIB:
        return f"{b / MIB:.1f} MiB"
    if b >= 1024:
        return f"{b / 1024:.1f} KiB"
    return f"{b} B"


def system_info() -> SystemInfo:
    """discover.GetCPUMem: /proc/meminfo, then cgroup v2 limits."""
    vals = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            if rest.strip():
                vals[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    total = vals.get("MemTotal", 0)
    free = vals.get("MemAvailable") or vals.get("MemFree", 0) + vals.get("Buffers", 0) + vals.get("Cached", 0)
    try:
        total = int(Path("/sys/fs/cgroup/memory.max").read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        free = total - int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        pass
    return SystemInfo(total, free, vals.get("SwapFree", 0))

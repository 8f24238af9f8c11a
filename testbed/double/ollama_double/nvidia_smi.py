"""What the double learns of the GPUs: nvidia-smi's answer, read as the CUDA runtime would.

Real Ollama asks the CUDA runtime, which the double does not have; it runs
``nvidia-smi`` (real, or the testbed's fake one on PATH) instead and maps
its driver version and device list the way the runtime does.  discovery.py
applies Ollama's own rules on top.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

# NVIDIA driver branch -> highest CUDA driver API version it provides.  Ollama
# logs the CUDA version (cuDriverGetVersion) as "driver", not the branch.
_DRIVER_CUDA = [
    (590, (13, 1)), (580, (13, 0)), (575, (12, 9)), (570, (12, 8)), (565, (12, 7)), (560, (12, 6)),
    (555, (12, 5)), (550, (12, 4)), (545, (12, 3)), (535, (12, 2)), (530, (12, 1)), (525, (12, 0)),
    (520, (11, 8)), (515, (11, 7)), (510, (11, 6)), (495, (11, 5)), (470, (11, 4)), (465, (11, 3)),
    (460, (11, 2)), (455, (11, 1)), (450, (11, 0)),
]


@dataclasses.dataclass
class SmiGPU:
    index: int
    pci: str
    uuid: str
    name: str
    total_mib: int | None
    used_mib: int | None
    compute: tuple[int, int]
    driver_version: str


def cuda_driver_version(driver_version: str) -> tuple[int, int]:
    """Map nvidia-smi's driver_version (e.g. 580.95.05) to the CUDA driver API version."""
    try:
        parts = [int(p) for p in driver_version.split(".")[:2]]
    except ValueError:
        return (0, 0)
    if not parts:
        return (0, 0)
    if parts[0] < 100:  # already a CUDA version (some fakes report "13.0")
        return (parts[0], parts[1] if len(parts) > 1 else 0)
    for branch, cuda in _DRIVER_CUDA:
        if parts[0] >= branch:
            return cuda
    return (10, 2)


def _mib(field: str) -> int | None:
    try:
        return int(float(field))
    except ValueError:
        return None  # "[N/A]" (unified memory, e.g. GB10), "[Not Supported]"


def query_nvidia_smi():
    """Run nvidia-smi like a driver probe. Returns (gpus, error or None); None gpus = no driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, None
    fields = "index,pci.bus_id,uuid,name,memory.total,memory.used,compute_cap,driver_version"
    try:
        proc = subprocess.run(
            [exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], str(e)
    if proc.returncode != 0:
        return [], f"exit status {proc.returncode}"
    gpus = []
    for line in proc.stdout.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) < 8:
            continue
        # a name containing commas: everything between uuid and the 4 numeric columns
        name = ", ".join(cols[3:len(cols) - 4])
        total, used, cc, drv = cols[-4:]
        try:
            major, minor = (int(x) for x in cc.split(".")[:2])
            index = int(cols[0])
        except ValueError:
            continue
        gpus.append(SmiGPU(index, cols[1], cols[2], name, _mib(total), _mib(used), (major, minor), drv))
    return gpus, None


def visible(gpus: list[SmiGPU], raw: str | None, uuid_ok: bool = True) -> list[SmiGPU]:
    """Apply a *_VISIBLE_DEVICES list the way the CUDA runtime does."""
    if raw is None:
        return list(gpus)
    out: list[SmiGPU] = []
    for token in raw.split(","):
        token = token.strip()
        pick = None
        if token.isdigit():
            idx = int(token)
            pick = next((g for g in gpus if g.index == idx), None)
        elif uuid_ok and token.upper().startswith(("GPU-", "MIG-")):
            matches = [g for g in gpus if g.uuid.upper().startswith(token.upper())]
            pick = matches[0] if len(matches) == 1 else None
        if pick is None or pick in out:
            break  # the runtime stops at the first invalid entry
        out.append(pick)
    return out

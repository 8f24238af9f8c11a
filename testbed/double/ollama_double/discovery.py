"""GPU discovery, imitating discover/runner.go of Ollama v0.32.15.

Real Ollama asks a bootstrap llama-server per ``lib/ollama/<variant>`` which
devices that backend can drive.  The test double has no GPU runtime, so it
asks ``nvidia-smi`` (real, or the testbed's fake one on PATH) and then applies
the same rules Ollama applies around the backend's answer:

* OLLAMA_LLM_LIBRARY is an exact-match filter on variant directory names;
  anything else (``cuda``, ``cpu``, ``cpu_avx2``) skips every GPU dir -> CPU.
* CUDA_VISIBLE_DEVICES is honoured the way the CUDA runtime does (indices or
  GPU-UUID prefixes; the list stops at the first invalid entry, so ``-1``
  hides everything).  It does not hide devices from Vulkan.
* cuda_v13 drives compute >= 7.5 with a CUDA 13 driver (>= 580); cuda_v12
  drives the architectures Ollama builds for it (Pascal included).
* With several CUDA variants, the newest one that covers all GPUs wins
  (filterOverlapByLibrary); CUDA is preferred over a Vulkan duplicate.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import goparse

from .config import LIB_OLLAMA

MIB = 1024 * 1024
GIB = 1024 * MIB

# CMAKE_CUDA_ARCHITECTURES of llama/server/CMakePresets.json (Linux presets).
CUDA_ARCHS = {
    "cuda_v12": {(5, 0), (5, 2), (6, 0), (6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)},
    "cuda_v13": {(7, 5), (8, 0), (8, 6), (8, 7), (8, 9), (9, 0), (10, 0), (10, 3), (11, 0), (12, 0), (12, 1)},
}
CUDA_RUNTIME = {"cuda_v12": (12, 8), "cuda_v13": (13, 0)}

# NVIDIA driver branch -> highest CUDA driver API version it provides.  Ollama
# logs the CUDA version (cuDriverGetVersion) as "driver", not the branch.
_DRIVER_CUDA = [
    (590, (13, 1)), (580, (13, 0)), (575, (12, 9)), (570, (12, 8)), (565, (12, 7)), (560, (12, 6)),
    (555, (12, 5)), (550, (12, 4)), (545, (12, 3)), (535, (12, 2)), (530, (12, 1)), (525, (12, 0)),
    (520, (11, 8)), (515, (11, 7)), (510, (11, 6)), (495, (11, 5)), (470, (11, 4)), (465, (11, 3)),
    (460, (11, 2)), (455, (11, 1)), (450, (11, 0)),
]


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


def _nvidia_branch(driver_version: str) -> int:
    try:
        major = int(driver_version.split(".")[0])
    except ValueError:
        return 0
    return major if major >= 100 else 0


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


def _pci(bus_id: str) -> str:
    """nvidia-smi 00000000:01:00.0 -> cuDeviceGetPCIBusId's 0000:01:00.0 (lower case)."""
    bus_id = bus_id.lower()
    dom, _, rest = bus_id.partition(":")
    return f"{dom[-4:]}:{rest}" if rest else bus_id


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


class Discovery:
    def __init__(self, env, log, lib_dir: Path = LIB_OLLAMA, environ=None):
        self.env = env
        self.log = log
        self.lib_dir = Path(lib_dir)
        self.environ = dict(os.environ if environ is None else environ)
        self.system = system_info()

    def _lib_dirs(self) -> list[Path]:
        dirs = {p.parent for p in self.lib_dir.glob("*/*ggml-*")}
        return sorted(d for d in dirs if d.name != "test-double")

    def _memory(self, g: SmiGPU) -> tuple[int, int]:
        if g.total_mib is None:  # unified memory: the CUDA runtime reports system RAM
            return self.system.total, self.system.free
        total = g.total_mib * MIB
        return total, max(total - (g.used_mib or 0) * MIB, 0)

    def run(self) -> list[Device]:
        log, env = self.log, self.env
        log.info("runner.go:60", "discovering available GPUs...")
        self._override_warnings()
        requested = env.llm_library
        smi_cache: list = []
        devices: list[Device] = []
        for d in self._lib_dirs():
            base = d.name
            if requested and not requested.startswith("mlx_") and base != requested:
                log.debug("runner.go:101", "skipping available library at user's request",
                          "requested", requested, "libDir", str(d))
                continue
            if "cuda_jetpack" in base:
                log.debug("runner.go:107", "jetpack not detected (set JETSON_JETPACK or OLLAMA_LLM_LIBRARY to override), skipping",
                          "libDir", str(d))
                continue
            if not env.vulkan and "vulkan" in base:
                continue
            if not smi_cache:
                smi_cache.append(query_nvidia_smi())
            gpus, err = smi_cache[0]
            if err is not None:
                log.info("runner.go:522", "failure during llama-server GPU discovery",
                         "OLLAMA_LIBRARY_PATH", [str(self.lib_dir), str(d)], "extra_envs", {},
                         "error", err, "detail", "")
                continue
            if not gpus:
                continue
            if base.startswith("cuda_"):
                devices += self._cuda(d, gpus)
            elif base == "vulkan":
                devices += self._vulkan(d, gpus)
        devices = self._filter_integrated(devices)
        devices = self._filter_overlap(devices)
        self._renumber(devices)
        devices = self._dedup(devices)
        return devices

    def _override_warnings(self):
        found = False
        for k in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                  "GGML_VK_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HSA_OVERRIDE_GFX_VERSION"):
            v = goparse.ollama_var(self.environ.get(k))
            if v:
                found = True
                self.log.warn("runner.go:722", "user overrode visible devices", k, v)
        if found:
            self.log.warn("runner.go:726", "if GPUs are not correctly discovered, unset and try again")

    def _cuda(self, d: Path, gpus: list[SmiGPU]) -> list[Device]:
        base = d.name
        archs = CUDA_ARCHS.get(base)
        runtime = CUDA_RUNTIME.get(base, (12, 8))
        out = []
        for ordinal, g in enumerate(visible(gpus, self.environ.get("CUDA_VISIBLE_DEVICES"))):
            driver = cuda_driver_version(g.driver_version)
            if driver < runtime and not (runtime[0] == 12 and driver[0] == 12):
                continue  # the runtime cannot initialise on this driver: no devices
            if archs is not None and g.compute not in archs:
                self.log.info("llama_server.go:299", "skipping CUDA device \u2014 compute capability not in compiled architectures",
                              "device", g.name, "cc", f"{g.compute[0]}{g.compute[1]}0",
                              "archs", [f"{a}{b}0" for a, b in sorted(archs)], "libDirs", [str(self.lib_dir), str(d)])
                continue
            total, free = self._memory(g)
            out.append(Device(
                id=str(ordinal), library="CUDA", name=f"CUDA{ordinal}", description=g.name, libdir=base,
                compute=g.compute, driver=driver, nvidia_driver_major=_nvidia_branch(g.driver_version),
                pci_id=_pci(g.pci), integrated="GB10" in g.name.upper(), total=total, free=free, uuid=g.uuid,
            ))
        if base == "cuda_v12":
            out = self._filter_old_driver(out)
        return out

    def _filter_old_driver(self, devs: list[Device]) -> list[Device]:
        """discover/cuda_compat.go filterOldCUDADriver for the CUDA 12.8 runtime."""
        if not devs:
            return devs
        driver = devs[0].nvidia_driver_major
        if driver == 0:
            self.log.warn("cuda_compat.go:39", "could not verify NVIDIA driver compatibility for CUDA")
            return devs
        if driver >= 570:
            return devs
        kept = []
        for dev in devs:
            if driver < 550:
                self.log.warn("cuda_compat.go:65", "NVIDIA driver too old", "device", dev.description,
                              "compute", dev.compute_str(), "driver", driver, "required_driver", "550 or newer")
            elif 0 < dev.compute[0] < 7:
                self.log.warn("cuda_compat.go:70", "NVIDIA driver too old", "device", dev.description,
                              "compute", dev.compute_str(), "driver", driver, "required_driver", "570 or newer")
            else:
                kept.append(dev)
        return kept

    def _vulkan(self, d: Path, gpus: list[SmiGPU]) -> list[Device]:
        out = []
        for ordinal, g in enumerate(visible(gpus, self.environ.get("GGML_VK_VISIBLE_DEVICES"), uuid_ok=False)):
            total, free = self._memory(g)
            out.append(Device(
                id=str(ordinal), library="Vulkan", name=f"Vulkan{ordinal}", description=g.name, libdir=d.name,
                compute=(0, 0), driver=(0, 0), nvidia_driver_major=0, pci_id=_pci(g.pci),
                integrated="GB10" in g.name.upper(), total=total, free=free, uuid=g.uuid,
            ))
        return out

    def _filter_integrated(self, devs: list[Device]) -> list[Device]:
        raw = self.environ.get("OLLAMA_IGPU_ENABLE")
        t, f = goparse.ollama_bool(raw, True), goparse.ollama_bool(raw, False)
        explicit = t == f
        kept = []
        for dev in devs:
            if not dev.integrated or (explicit and t) or (not explicit and dev.library == "CUDA"):
                kept.append(dev)
                continue
            self.log.info("runner.go:405", "dropping integrated GPU; to enable, set OLLAMA_IGPU_ENABLE=1",
                          "id", dev.id, "library", dev.library, "compute", dev.compute_str(), "name", dev.name,
                          "description", dev.description, "pci_id", dev.pci_id)
        return kept

    def _filter_overlap(self, devs: list[Device]) -> list[Device]:
        """filterOverlapByLibrary (including its quirk of falling back to the oldest dir)."""
        delete = set()
        by_lib: dict[str, dict[str, dict[str, int]]] = {}
        for i, dev in enumerate(devs):
            by_lib.setdefault(dev.library, {}).setdefault(dev.libdir, {})[dev.pci_id] = i
        for by_dir in by_lib.values():
            dirs = sorted(by_dir, reverse=True)
            any_missing = False
            newest = dirs[0]
            for newest in dirs:
                for other in dirs:
                    if other != newest and set(by_dir[newest]) != set(by_dir[other]):
                        any_missing = True
                        break
                if not any_missing:
                    break
            for other in dirs:
                if other == newest:
                    continue
                for pci, i in by_dir[other].items():
                    if pci in by_dir[newest]:
                        delete.add(i)
        return [dev for i, dev in enumerate(devs) if i not in delete]

    def _renumber(self, devs: list[Device]) -> None:
        """Numeric IDs become post-filter ordinals; FilterID keeps the backend's ordinal
        (or the user's *_VISIBLE_DEVICES token for it)."""
        counters: dict[str, int] = {}
        for dev in devs:
            n = counters.get(dev.library, 0)
            dev.filter_id = dev.id
            dev.id = str(n)
            var = {"CUDA": "CUDA_VISIBLE_DEVICES", "Vulkan": "GGML_VK_VISIBLE_DEVICES"}[dev.library]
            tokens = [t.strip() for t in goparse.ollama_var(self.environ.get(var)).split(",") if t.strip()]
            idx = int(dev.filter_id)
            if 0 <= idx < len(tokens):
                dev.filter_id = tokens[idx]
            counters[dev.library] = n + 1

    def _dedup(self, devs: list[Device]) -> list[Device]:
        out: list[Device] = []
        for dev in devs:
            same = next((o for o in out if o.pci_id == dev.pci_id and o.library != dev.library), None)
            if same is None:
                out.append(dev)
                continue
            keep, drop = (same, dev) if same.library == "CUDA" else (dev, same)
            out[out.index(same)] = keep
            self.log.debug("runner.go:226", "dropping duplicate device", "id", drop.id, "library", drop.library,
                           "compute", drop.compute_str(), "name", drop.name, "description", drop.description,
                           "libdirs", [str(self.lib_dir), str(self.lib_dir / drop.libdir)], "driver", drop.driver_str(),
                           "pci_id", drop.pci_id, "type", "iGPU" if drop.integrated else "discrete",
                           "total", human_bytes2(drop.total), "available", human_bytes2(drop.free))
        return out

    def log_details(self, devs: list[Device]) -> None:
        """discover.LogDetails: one "inference compute" line per device, or the CPU line."""
        for dev in sorted(devs, key=lambda d: d.free, reverse=True):
            self.log.info("types.go:32", "inference compute", "id", dev.id, "filter_id", dev.filter_id,
                          "library", dev.library, "compute", dev.compute_str(), "name", dev.name,
                          "description", dev.description, "libdirs", f"ollama,{dev.libdir}",
                          "driver", dev.driver_str(), "pci_id", dev.pci_id,
                          "type", "iGPU" if dev.integrated else "discrete",
                          "total", human_bytes2(dev.total), "available", human_bytes2(dev.free))
        if not devs:
            s = self.system
            self.log.info("types.go:50", "inference compute", "id", "cpu", "library", "cpu", "compute", "",
                          "name", "cpu", "description", "cpu", "libdirs", "ollama", "driver", "", "pci_id", "",
                          "type", "", "total", human_bytes2(s.total), "available", human_bytes2(s.free))

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

The device records are in devices.py and the nvidia-smi probe in nvidia_smi.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from ollama_deploy.gocompat import envconfig

from .config import LIB_OLLAMA
from .devices import MIB, Device, human_bytes2, system_info
from .nvidia_smi import SmiGPU, cuda_driver_version, query_nvidia_smi, visible

# CMAKE_CUDA_ARCHITECTURES of llama/server/CMakePresets.json (Linux presets).
CUDA_ARCHS = {
    "cuda_v12": {(5, 0), (5, 2), (6, 0), (6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)},
    "cuda_v13": {(7, 5), (8, 0), (8, 6), (8, 7), (8, 9), (9, 0), (10, 0), (10, 3), (11, 0), (12, 0), (12, 1)},
}
CUDA_RUNTIME = {"cuda_v12": (12, 8), "cuda_v13": (13, 0)}


def _nvidia_branch(driver_version: str) -> int:
    try:
        major = int(driver_version.split(".")[0])
    except ValueError:
        return 0
    return major if major >= 100 else 0


def _pci(bus_id: str) -> str:
    """nvidia-smi 00000000:01:00.0 -> cuDeviceGetPCIBusId's 0000:01:00.0 (lower case)."""
    bus_id = bus_id.lower()
    dom, _, rest = bus_id.partition(":")
    return f"{dom[-4:]}:{rest}" if rest else bus_id


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
                log.debug("runner.go:107", "jetpack not detected (set JETSON_JETPACK or OLLAMA_LLM_LIBRARY to override), skipping",  # noqa: E501 (the text as the program prints it)
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
            v = envconfig.ollama_var(self.environ.get(k))
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
                self.log.info("llama_server.go:299", "skipping CUDA device \u2014 compute capability not in compiled architectures",  # noqa: E501 (the text as the program prints it)
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
        t, f = envconfig.ollama_bool(raw, True), envconfig.ollama_bool(raw, False)
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
            tokens = [t.strip() for t in envconfig.ollama_var(self.environ.get(var)).split(",") if t.strip()]
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

"""Host hardware as the deploy plans with it: CPU, memory, NVIDIA GPUs. Pure parsers of recorded
command output (tested on fixtures; ollama_deploy.facts.hardware gathers it in one round trip), and
the same shape from NVML when the deploy runs on the machine itself (`pyinfra @local deploy.py`).

Example:
    hw = parse_hardware(output_lines)
    hw.physical_cores, hw.mem_total_mib, [g.name for g in hw.gpus]
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

GPU_QUERY = "index,pci.bus_id,uuid,name,memory.total,memory.used,compute_cap,driver_version"


@dataclass(frozen=True)
class Gpu:
    index: int
    bus_id: str
    uuid: str
    name: str
    memory_total_mib: int | None  # None: unified memory (GB10 reports [N/A])
    memory_used_mib: int | None
    compute_cap: str
    driver: str

    @property
    def unified_memory(self) -> bool:
        return self.memory_total_mib is None


@dataclass(frozen=True)
class Hardware:
    arch: str
    cpu_model: str
    physical_cores: int
    threads: int
    cpu_flags: frozenset[str]
    mem_total_mib: int
    swap_total_mib: int
    gpus: tuple[Gpu, ...] = ()
    gpu_problem: str | None = None  # nvidia-smi present but failing (driver missing or broken)
    overridden: tuple[str, ...] = field(default=())


class ParseError(ValueError):
    pass


def _mib(value: str) -> int | None:
    value = value.strip()
    if value in ("[N/A]", "N/A", "[Not Supported]"):
        return None
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"not a MiB number: {value!r}") from None


def parse_nvidia_smi(lines: list[str]) -> list[Gpu]:
    """Rows of `nvidia-smi --query-gpu=GPU_QUERY --format=csv,noheader,nounits`, in PCI bus order."""
    gpus = []
    for line in (raw for raw in lines if raw.strip()):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 8:
            raise ParseError(f"nvidia-smi row has {len(cells)} fields, expected 8: {line!r}")
        index, bus_id, uuid, name, total, used, cap, driver = cells
        if not index.isdigit():
            raise ParseError(f"nvidia-smi row has no GPU index: {line!r}")
        gpus.append(Gpu(int(index), bus_id, uuid, name, _mib(total), _mib(used), cap, driver))
    return sorted(gpus, key=lambda g: g.bus_id.lower())


def parse_lscpu_topology(lines: list[str]) -> tuple[int, int]:
    """(physical cores, threads) from `lscpu -p=CPU,CORE,SOCKET`.

    The core count is only right where all CPUs are of one type: lscpu numbers logical cores per
    CPU type, so on a hybrid ARM chip (GB10: 10 Cortex-X925 + 10 Cortex-A725) the CORE column
    restarts at 0 for each type and this counts 10, not 20. parse_hardware takes the core count
    from the thread sibling lists when the host printed them (parse_thread_siblings).
    """
    cpus, cores = set(), set()
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        cpu, core, socket = (line.split(",") + ["", ""])[:3]
        cpus.add(cpu)
        cores.add((socket, core))
    if not cpus:
        raise ParseError("lscpu listed no CPUs")
    return len(cores), len(cpus)


def parse_thread_siblings(lines: list[str]) -> int:
    """Physical cores from /sys/devices/system/cpu/cpu*/topology/thread_siblings_list, one line
    per online CPU (e.g. "0,12" twice on a 2-way SMT core, "5" on a core without SMT): the
    number of distinct sibling lists. 0 when nothing was printed (no sysfs)."""
    return len({line.strip() for line in lines if line.strip()})


def parse_cpuinfo(lines: list[str]) -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo: x86 'model name'/'flags', arm64 'Features'."""
    model, flags = "", frozenset[str]()
    for line in lines:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return model, flags


def parse_meminfo(lines: list[str]) -> tuple[int, int]:
    """(MemTotal, SwapTotal) in MiB from /proc/meminfo."""
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "SwapTotal"):
            values[key] = int(rest.split()[0]) // 1024
    if "MemTotal" not in values:
        raise ParseError("no MemTotal in /proc/meminfo")
    return values["MemTotal"], values.get("SwapTotal", 0)


def _sections(lines: list[str]) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.startswith("@@ "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def parse_hardware(lines: list[str]) -> Hardware:
    """The output of HardwareFact's command, section by section."""
    s = _sections(lines)
    cores, threads = parse_lscpu_topology(s.get("lscpu", []))
    sibling_cores = parse_thread_siblings(s.get("thread_siblings", []))
    if sibling_cores:  # right on hybrid CPUs too, and where lscpu is missing (awk fallback)
        cores = min(sibling_cores, threads)
    model, flags = parse_cpuinfo(s.get("cpuinfo", []))
    mem, swap = parse_meminfo(s.get("meminfo", []))
    gpus: tuple[Gpu, ...] = ()
    problem: str | None = None
    smi = [line for line in s.get("nvidia-smi", []) if line.strip()]
    status = smi[-1].strip() if smi else "absent"
    if status == "rc=0":
        gpus = tuple(parse_nvidia_smi(smi[:-1]))
    elif status != "absent":
        problem = " ".join(line.strip() for line in smi[:-1] if line.strip())[:300] or status
    arch = (s.get("uname") or ["unknown"])[0].strip()
    return Hardware(arch, model, cores, threads, flags, mem, swap, gpus, problem)


def apply_override(hw: Hardware, override: dict | None) -> Hardware:
    """Replace detected values with inventory `facts_override` ones (keys as in Hardware)."""
    if not override:
        return hw
    allowed = {"arch", "cpu_model", "physical_cores", "threads", "cpu_flags", "mem_total_mib"}
    unknown = set(override) - allowed
    if unknown:
        raise ParseError(f"facts_override: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    values: dict[str, Any] = {k: (frozenset(v) if k == "cpu_flags" else v) for k, v in override.items()}
    return replace(hw, **values, overridden=tuple(sorted(override)))


def gpus_from_nvml(nvml) -> list[Gpu]:
    """The same Gpu records from NVML (pass the `pynvml` module), for `pyinfra @local` runs."""
    nvml.nvmlInit()
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            total, used = _nvml_memory_mib(nvml, handle)
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(Gpu(i, _text(nvml.nvmlDeviceGetPciInfo(handle).busId),
                            _text(nvml.nvmlDeviceGetUUID(handle)), _text(nvml.nvmlDeviceGetName(handle)),
                            total, used, f"{major}.{minor}", _text(driver)))
        return sorted(gpus, key=lambda g: g.bus_id.lower())
    finally:
        nvml.nvmlShutdown()


def _text(value) -> str:
    """Old pynvml releases return bytes where nvidia-ml-py returns str."""
    return value.decode() if isinstance(value, bytes) else value


def _nvml_memory_mib(nvml, handle) -> tuple[int | None, int | None]:
    """(total, used) MiB as nvidia-smi's memory.total/memory.used show them, or (None, None) for
    unified memory (GB10 answers NOT_SUPPORTED). Since R510 the v1 call's `used` includes the
    driver's reserved memory (a few hundred MiB on an idle GPU) and nvidia-smi's does not; the v2
    call matches nvidia-smi. Where v2 fails (older driver: FUNCTION_NOT_FOUND, WSL: UNKNOWN, GB10)
    the v1 call decides; any error other than NOT_SUPPORTED there (GPU lost, ...) is raised, not
    taken for unified memory."""
    if getattr(nvml, "nvmlMemory_v2", None) is not None:
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2)
            return memory.total // 2**20, memory.used // 2**20
        except nvml.NVMLError:
            pass
    try:
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    except nvml.NVMLError as e:
        if getattr(e, "value", None) == getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3):
            return None, None
        raise
    return memory.total // 2**20, memory.used // 2**20

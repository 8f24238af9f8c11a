"""ollama_deploy/lib/hardware.py: the parsers on recorded HardwareFact output (tests/fixtures/hardware, provenance in
SOURCES.md there), NVML through a stand-in, and the real fact command run on this machine.

Expected values are read independently where they are recorded: the seed reports (verbatim excerpts in
tests/fixtures/hardware/seeds/; docs/hand-tuned-hosts.md describes the hosts), the
testbed's hardware profiles (testbed/hardware/profiles/*/*.json), this machine's /proc and sysconf.
"""
import inspect
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pyinfra.api import FactProcessError

from ollama_deploy.facts.hardware import HardwareFact
from ollama_deploy.lib.hardware import (
    GPU_QUERY,
    Gpu,
    ParseError,
    apply_override,
    gpus_from_nvml,
    parse_hardware,
    parse_lscpu_topology,
    parse_nvidia_smi,
    parse_thread_siblings,
)

with warnings.catch_warnings():  # pynvml 13 warns that the nvidia-ml-py module it forwards to is the one to use
    warnings.simplefilter("ignore", FutureWarning)
    import pynvml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hardware"
PROFILES = ROOT / "testbed" / "hardware" / "profiles"
REPLAY = ROOT / "testbed" / "hardware" / "nvidia_smi_replay.py"
SEEDS = FIXTURES / "seeds"


def lines(name):
    # pyinfra hands a fact its stdout as lines with the newline removed, nothing else stripped.
    return (FIXTURES / name).read_text().split("\n")[:-1]


def section(name, title):
    out, inside = [], False
    for line in lines(name):
        if line.startswith("@@ "):
            inside = line == f"@@ {title}"
        elif inside:
            out.append(line)
    return out


def profile(name, kind):
    return json.loads((PROFILES / name / f"{kind}.json").read_text())


def seed(prefix):
    return (SEEDS / f"{prefix}.txt").read_text()


def gpus_from_profile(name):
    rec = profile(name, "gpus")
    return [Gpu(g["index"], g["pci.bus_id"], g["uuid"], g["name"], g["memory.total"], g["memory.used"],
                g["compute_cap"], rec["driver_version"]) for g in rec["gpus"]]


FIXTURE_NAMES = ["dual_gpu_seed003.txt", "dgx_spark_gb10.txt", "xeon_e5_2670v3_seed000.txt",
                 "cpu12_29g_seed002.txt", "no_driver.txt"]


# ---------------------------------------------------------------- the recorded hosts

@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_is_plain_command_output(name):
    text = (FIXTURES / name).read_text()
    titles = [line[3:] for line in text.splitlines() if line.startswith("@@ ")]
    # The sections in the order the command prints them, nothing before the first one.
    assert titles == ["uname", "lscpu", "thread_siblings", "cpuinfo", "meminfo", "nvidia-smi"]
    assert text.startswith("@@ uname\n")
    assert section(name, "lscpu")[:3] == [
        "# The following is the parsable format, which can be fed to other",
        "# programs. Each different item in every column has an unique ID",
        "# starting usually from zero."]
    assert section(name, "lscpu")[3] == "# CPU,Core,Socket"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fact_process_equals_parse_hardware(name):
    assert HardwareFact().process(lines(name)) == parse_hardware(lines(name))


def test_dual_gpu_seed003_against_seed_table_and_profile():
    hw = parse_hardware(lines("dual_gpu_seed003.txt"))
    text = seed("003")
    # The first nvidia-smi table of the seed: "|   0  Quadro P4000   On  |   00000000:03:00.0 Off |"
    rows = re.findall(r"^\|\s+(\d+)\s+(.+?)\s+On\s+\|\s+([0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.\d)", text, re.M)
    totals = re.findall(r"MiB /\s+(\d+)MiB", text)
    driver = re.search(r"Driver Version: (\S+)", text).group(1)
    assert [(str(g.index), g.name, g.bus_id) for g in hw.gpus] == rows[:2]
    assert [g.memory_total_mib for g in hw.gpus] == [int(t) for t in totals[:2]]
    assert {g.driver for g in hw.gpus} == {driver}
    assert re.search(r"GPU 1: (\d+)MiB / 6144MiB \(idle\)", text).group(1) == str(hw.gpus[1].memory_used_mib)
    # UUIDs, idle memory.used and compute capability: the testbed profile of the same host.
    assert list(hw.gpus) == gpus_from_profile("dual_gpu")
    assert [g.bus_id for g in hw.gpus] == sorted(g.bus_id for g in hw.gpus)  # PCI bus order
    assert not any(g.unified_memory for g in hw.gpus)
    assert hw.gpu_problem is None
    assert hw.arch == "x86_64"
    # Composed CPU side (the seed records none): i9-9900K, 8 cores / 16 threads, 32 GB.
    assert (hw.physical_cores, hw.threads) == (8, 16)
    assert hw.cpu_model.startswith("Intel(R) Core(TM) i9-9900K")
    assert {"avx2", "fma", "f16c"} <= hw.cpu_flags and "avx512f" not in hw.cpu_flags
    assert 30 * 1024 < hw.mem_total_mib <= 32 * 1024


def test_dgx_spark_gb10_against_profile():
    hw = parse_hardware(lines("dgx_spark_gb10.txt"))
    spec = profile("dgx_spark", "hardware")
    assert hw.arch == spec["arch"] == "aarch64"
    assert (hw.physical_cores, hw.threads) == (spec["physical_cores"], spec["threads"])
    assert hw.mem_total_mib == spec["mem_total_mib"]
    assert hw.cpu_flags == frozenset(spec["cpu_flags"])
    assert hw.cpu_model == ""  # arm64 /proc/cpuinfo has no "model name" line
    [gpu] = hw.gpus
    assert [gpu] == gpus_from_profile("dgx_spark")
    assert gpu.unified_memory and gpu.memory_total_mib is None and gpu.memory_used_mib is None
    assert gpu.compute_cap == "12.1" and gpu.name == "NVIDIA GB10"
    assert hw.gpu_problem is None


def test_gb10_lscpu_alone_undercounts_the_hybrid_cores():
    # lscpu numbers logical cores per CPU type, so its CORE column restarts for the Cortex-X925s:
    # 20 CPUs, 10 distinct (socket, core) pairs. The sibling lists give the 20 real cores.
    assert parse_lscpu_topology(section("dgx_spark_gb10.txt", "lscpu")) == (10, 20)
    assert parse_thread_siblings(section("dgx_spark_gb10.txt", "thread_siblings")) == 20


def test_hybrid_arm_recorded_by_util_linux():
    # util-linux's own recorded test case tests/expected/lscpu/lscpu-arm-A510-A710-A715-X3 (lscpu --parse,
    # first three columns) and the thread_siblings_list files of its sysfs dump
    # tests/ts/lscpu/dumps/arm-A510-A710-A715-X3.tar.gz: 8 single-thread cores of 4 types.
    lscpu = ["# CPU,Core,Socket", "0,0,0", "1,1,0", "2,2,0", "3,0,0", "4,1,0", "5,0,0", "6,1,0", "7,0,0"]
    siblings = ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert parse_lscpu_topology(lscpu) == (3, 8)
    assert parse_thread_siblings(siblings) == 8
    out = ["@@ uname", "aarch64", "@@ lscpu", *lscpu, "@@ thread_siblings", *siblings,
           "@@ meminfo", "MemTotal:        7812500 kB", "@@ nvidia-smi", "absent"]
    hw = parse_hardware(out)
    assert (hw.physical_cores, hw.threads) == (8, 8)


def test_xeon_seed000_against_seed_text():
    hw = parse_hardware(lines("xeon_e5_2670v3_seed000.txt"))
    text = seed("000")
    cores, threads = re.search(r"(\d+) physical cores, (\d+) threads", text).groups()
    assert (hw.physical_cores, hw.threads) == (int(cores), int(threads))
    model = re.search(r"\*\*CPU\*\*: (.+)", text).group(1).strip()
    assert re.sub(r"\(R\)| CPU", "", hw.cpu_model) == model  # "Intel Xeon E5-2670 v3 @ 2.30GHz"
    ram_gb = int(re.search(r"\*\*Memory\*\*: (\d+)GB RAM", text).group(1))
    # A "32GB" machine: MemTotal a little under the nominal 32 GiB (firmware and kernel keep some).
    assert 0.95 * ram_gb * 1024 < hw.mem_total_mib <= ram_gb * 1024
    assert "AVX2" in text and "avx2" in hw.cpu_flags and "avx512f" not in hw.cpu_flags
    assert hw.cpu_flags == frozenset(profile("cpu_xeon", "hardware")["cpu_flags"])
    assert hw.arch == "x86_64"
    assert hw.gpus == () and hw.gpu_problem is None  # nvidia-smi not installed: "absent"


def test_cpu12_seed002_reads_12_cores_as_12_logical_cpus():
    hw = parse_hardware(lines("cpu12_29g_seed002.txt"))
    text = seed("002")
    cpus = int(re.search(r"\*\*CPU:\*\* (\d+) cores", text).group(1))
    ram_gb = int(re.search(r"\*\*Memory:\*\* (\d+)GB RAM", text).group(1))
    # Decision (SOURCES.md): the seed's "12 cores" is the logical CPU count (nproc / os.cpu_count()).
    assert hw.threads == cpus
    assert hw.physical_cores == cpus // 2
    assert hw.mem_total_mib // 1024 == ram_gb  # GiB, as `free -g` prints it
    assert hw.gpus == () and hw.gpu_problem is None


def test_no_driver_is_a_problem_not_a_gpu():
    hw = parse_hardware(lines("no_driver.txt"))
    assert hw.gpus == ()
    assert "NVIDIA driver" in hw.gpu_problem
    assert section("no_driver.txt", "nvidia-smi")[-1] == "rc=9"
    assert (hw.physical_cores, hw.threads) == (2, 4)


def test_fixture_gpu_rows_match_the_testbed_replay(tmp_path):
    # The testbed's nvidia-smi replay prints the same rows for the same recorded profile.
    for fixture, prof in [("dual_gpu_seed003.txt", "dual_gpu"), ("dgx_spark_gb10.txt", "dgx_spark")]:
        env = {"NVIDIA_SMI_REPLAY_DIR": str(PROFILES / prof), "NVIDIA_SMI_REPLAY_FAIL_DIR": str(tmp_path),
               "PATH": "/usr/bin:/bin"}
        run = subprocess.run([sys.executable, str(REPLAY), f"--query-gpu={GPU_QUERY}",
                              "--format=csv,noheader,nounits"], env=env, capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() + ["rc=0"] == section(fixture, "nvidia-smi")


# ---------------------------------------------------------------- parser edges

def test_gpus_come_in_pci_bus_order():
    rows = section("dual_gpu_seed003.txt", "nvidia-smi")[:-1]
    assert len(rows) == 2
    gpus = parse_nvidia_smi(list(reversed(rows)))
    assert [g.bus_id for g in gpus] == ["00000000:03:00.0", "00000000:04:00.0"]
    assert [g.index for g in gpus] == [0, 1]


@pytest.mark.parametrize("row", [
    "0, 00000000:03:00.0, GPU-1b2b57e6-2316-6802-d5d9-8c40fca884f2, Quadro P4000, 8192, 1, 6.1",  # 7 fields
    "0, 00000000:03:00.0, GPU-1b2b57e6, Quadro P4000, 8192 MiB, 1, 6.1, 580.65.06",  # units left in
    "x, 00000000:03:00.0, GPU-1b2b57e6, Quadro P4000, 8192, 1, 6.1, 580.65.06",  # no index
    "Unable to determine the device handle for GPU0000:03:00.0: Unknown Error",
])
def test_malformed_nvidia_smi_row_is_a_parse_error(row):
    with pytest.raises(ParseError):
        parse_nvidia_smi([row])


def test_malformed_row_fails_the_fact():
    out = lines("dual_gpu_seed003.txt")
    out[out.index("rc=0") - 1] = "1, 00000000:04:00.0, broken"
    with pytest.raises(ParseError):
        parse_hardware(out)
    with pytest.raises(FactProcessError):
        HardwareFact().process(out)


def test_missing_meminfo_is_a_parse_error():
    out = [line for line in lines("xeon_e5_2670v3_seed000.txt") if not line.startswith("MemTotal")]
    with pytest.raises(ParseError):
        parse_hardware(out)


# ---------------------------------------------------------------- facts_override

def test_apply_override_replaces_and_records():
    hw = parse_hardware(lines("xeon_e5_2670v3_seed000.txt"))
    new = apply_override(hw, {"arch": "aarch64", "physical_cores": 6, "cpu_flags": ["avx2", "fma"]})
    assert (new.arch, new.physical_cores, new.cpu_flags) == ("aarch64", 6, frozenset({"avx2", "fma"}))
    assert new.overridden == ("arch", "cpu_flags", "physical_cores")
    assert (new.threads, new.mem_total_mib, new.cpu_model) == (hw.threads, hw.mem_total_mib, hw.cpu_model)
    assert apply_override(hw, None) is hw and apply_override(hw, {}) is hw


@pytest.mark.parametrize("key", ["cores", "gpus", "swap_total_mib", "overridden"])
def test_apply_override_rejects_unknown_keys(key):
    hw = parse_hardware(lines("xeon_e5_2670v3_seed000.txt"))
    with pytest.raises(ParseError, match=key):
        apply_override(hw, {"physical_cores": 4, key: 1})


# ---------------------------------------------------------------- NVML

class StandInNVML:
    """Stand-in for the pynvml module. NVML itself cannot run here (no NVIDIA driver or GPU on this
    machine), so the device calls are answered from a list of devices; the rest is the real pynvml's:
    its NVMLError classes and codes, nvmlMemory_v2, and the ctypes structs it returns (whose str fields
    read back as str). test_stand_in_matches_real_pynvml checks the names and signatures."""

    NVMLError = pynvml.NVMLError
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    nvmlMemory_v2 = pynvml.nvmlMemory_v2

    def __init__(self, driver, devices):
        self.driver, self.devices, self.initialised = driver, devices, 0

    def nvmlInit(self):
        self.initialised += 1

    def nvmlShutdown(self):
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.devices[index]

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        error = handle.get("memory_error_v2" if version else "memory_error")
        if error is not None:
            raise pynvml.NVMLError(error)
        mib = 2**20
        total, used, reserved = handle["total"] * mib, handle["used"] * mib, handle["reserved"] * mib
        if version:
            memory = pynvml.c_nvmlMemory_v2_t()
            memory.version, memory.total, memory.reserved = version, total, reserved
            memory.used, memory.free = used, total - reserved - used
        else:  # v1: used includes the driver's reserved memory
            memory = pynvml.c_nvmlMemory_t()
            memory.total, memory.used, memory.free = total, used + reserved, total - reserved - used
        return memory

    def nvmlDeviceGetPciInfo(self, handle):
        info = pynvml.nvmlPciInfo_t()
        info.busId = handle["bus_id"]
        return info

    def nvmlDeviceGetUUID(self, handle):
        return handle["uuid"]

    def nvmlDeviceGetName(self, handle):
        return handle["name"]

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return handle["cap"]


def device(gpu, reserved=0, **errors):
    major, minor = (int(part) for part in gpu.compute_cap.split("."))
    return {"bus_id": gpu.bus_id, "uuid": gpu.uuid, "name": gpu.name, "total": gpu.memory_total_mib,
            "used": gpu.memory_used_mib, "reserved": reserved, "cap": (major, minor), **errors}


def test_stand_in_matches_real_pynvml():
    for name, member in vars(StandInNVML).items():
        if name.startswith("nvml") and callable(member):
            real = getattr(pynvml, name)
            expected = list(inspect.signature(real).parameters)
            assert list(inspect.signature(member).parameters)[1:] == expected, name
    assert issubclass(pynvml.NVMLError_NotSupported, pynvml.NVMLError)


def test_nvml_equals_nvidia_smi_for_the_seed003_gpus():
    from_smi = parse_nvidia_smi(section("dual_gpu_seed003.txt", "nvidia-smi")[:-1])
    # Listed in reverse: the result is still in PCI bus order. 103 MiB reserved is not in nvidia-smi's
    # memory.used, and NVML's v2 call leaves it out the same way.
    nvml = StandInNVML("580.65.06", [device(g, reserved=103) for g in reversed(gpus_from_profile("dual_gpu"))])
    from_nvml = gpus_from_nvml(nvml)
    assert [(g.bus_id, g.uuid, g.name, g.memory_total_mib, g.memory_used_mib, g.compute_cap, g.driver)
            for g in from_nvml] == [
        (g.bus_id, g.uuid, g.name, g.memory_total_mib, g.memory_used_mib, g.compute_cap, g.driver)
        for g in from_smi]
    assert all(isinstance(g.bus_id, str) for g in from_nvml)
    assert nvml.initialised == 0  # shut down again


def test_nvml_same_records_when_indexes_agree():
    gpus = gpus_from_profile("dual_gpu")
    assert gpus_from_nvml(StandInNVML("580.65.06", [device(g) for g in gpus])) == \
        parse_nvidia_smi(section("dual_gpu_seed003.txt", "nvidia-smi")[:-1])


def test_nvml_gb10_memory_not_supported_is_unified():
    [gb10] = gpus_from_profile("dgx_spark")
    ns = pynvml.NVML_ERROR_NOT_SUPPORTED
    nvml = StandInNVML("580.95.05", [{**device(gb10), "memory_error": ns, "memory_error_v2": ns}])
    [gpu] = gpus_from_nvml(nvml)
    assert gpu.memory_total_mib is None and gpu.memory_used_mib is None and gpu.unified_memory
    assert [gpu] == parse_nvidia_smi(section("dgx_spark_gb10.txt", "nvidia-smi")[:-1])


def test_nvml_falls_back_to_v1_without_the_v2_call():
    [p4000, _] = gpus_from_profile("dual_gpu")
    old_driver = StandInNVML("580.65.06", [device(p4000, reserved=103,
                                                  memory_error_v2=pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)])
    [gpu] = gpus_from_nvml(old_driver)
    assert (gpu.memory_total_mib, gpu.memory_used_mib) == (8192, 1 + 103)  # v1 counts reserved as used
    wsl = StandInNVML("580.65.06", [device(p4000, reserved=103, memory_error_v2=pynvml.NVML_ERROR_UNKNOWN)])
    assert gpus_from_nvml(wsl)[0].memory_used_mib == 1 + 103

    class OldBinding(StandInNVML):  # a pynvml from before nvmlMemory_v2
        def __getattribute__(self, name):
            if name == "nvmlMemory_v2":
                raise AttributeError(name)
            return super().__getattribute__(name)

    [gpu] = gpus_from_nvml(OldBinding("580.65.06", [device(p4000, reserved=103)]))
    assert (gpu.memory_total_mib, gpu.memory_used_mib) == (8192, 1 + 103)


def test_nvml_other_errors_are_not_unified_memory():
    [p4000, _] = gpus_from_profile("dual_gpu")
    lost = pynvml.NVML_ERROR_GPU_IS_LOST
    nvml = StandInNVML("580.65.06", [device(p4000, memory_error=lost, memory_error_v2=lost)])
    with pytest.raises(pynvml.NVMLError) as raised:
        gpus_from_nvml(nvml)
    assert raised.value.value == lost
    assert nvml.initialised == 0


def test_nvml_bytes_from_old_bindings_become_str():
    [p4000, _] = gpus_from_profile("dual_gpu")
    dev = {**device(p4000), "uuid": p4000.uuid.encode(), "name": p4000.name.encode()}
    [gpu] = gpus_from_nvml(StandInNVML(b"580.65.06", [dev]))
    assert (gpu.uuid, gpu.name, gpu.driver) == (p4000.uuid, p4000.name, "580.65.06")


# ---------------------------------------------------------------- the real command, here

def run_fact_command(path_prefix=None, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    run = subprocess.run(["sh", "-c", HardwareFact().command()], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr  # pyinfra drops a fact whose command fails
    return run.stdout.split("\n")[:-1]


def cpuinfo_cores():
    pairs = set()
    block = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines() + [""]:
        if not line.strip():
            if "core id" in block:
                pairs.add((block.get("physical id"), block["core id"]))
            block = {}
            continue
        key, _, value = line.partition(":")
        block[key.strip()] = value.strip()
    return len(pairs)


def test_real_command_on_this_machine():
    # Same command string pyinfra sends (it runs it with sh -c). This machine: x86_64, no GPU.
    hw = parse_hardware(run_fact_command())
    assert hw.arch == platform.machine()
    assert hw.physical_cores >= 1 and hw.threads >= hw.physical_cores
    assert hw.threads == os.cpu_count()
    if cpuinfo_cores():  # x86 /proc/cpuinfo names physical id / core id per CPU
        assert hw.physical_cores == cpuinfo_cores()
    page_mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    assert hw.mem_total_mib > 0 and abs(hw.mem_total_mib - page_mib) <= 1
    if platform.machine() == "x86_64":
        assert hw.cpu_model and "fpu" in hw.cpu_flags
    if shutil.which("nvidia-smi") is None:
        assert hw.gpus == () and hw.gpu_problem is None
    assert HardwareFact().process(run_fact_command()) == hw


def test_real_command_without_lscpu_falls_back(tmp_path):
    (tmp_path / "lscpu").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "lscpu").chmod(0o755)
    hw, normal = parse_hardware(run_fact_command(tmp_path)), parse_hardware(run_fact_command())
    assert hw.threads == normal.threads == os.cpu_count()
    assert hw.physical_cores == normal.physical_cores  # from the sibling lists, not one core per CPU


def test_real_command_with_replayed_nvidia_smi(tmp_path):
    # The testbed's recorded nvidia-smi in place of the real one; everything else is this machine.
    shim = tmp_path / "bin" / "nvidia-smi"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {REPLAY} \"$@\"\n")
    shim.chmod(0o755)
    env = {"NVIDIA_SMI_REPLAY_DIR": str(PROFILES / "dual_gpu"), "NVIDIA_SMI_REPLAY_FAIL_DIR": str(tmp_path)}
    hw = parse_hardware(run_fact_command(shim.parent, env))
    assert list(hw.gpus) == gpus_from_profile("dual_gpu") and hw.gpu_problem is None
    (tmp_path / "fail").touch()  # the replay's "driver gone" mode: exit 9 and NVIDIA's message
    hw = parse_hardware(run_fact_command(shim.parent, env))
    assert hw.gpus == () and "NVIDIA driver" in hw.gpu_problem

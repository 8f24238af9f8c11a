"""ollama_deploy/lib/hardware.py: the parsers on recorded HardwareFact output (tests/fixtures/hardware, provenance in
SOURCES.md there), NVML through a stand-in, and the real fact command run on this machine.

Expected values are read independently where they are recorded: the seed reports (verbatim excerpts in
tests/fixtures/hardware/seeds/; docs/hand-tuned-hosts.md describes the hosts), the
testbed's hardware profiles (testbed/hardware/profiles/*/*.json), this machine's /proc and sysconf.
"""
import re
import subprocess
import sys

import pytest
from pyinfra.api import FactProcessError

from ollama_deploy.facts.hardware import HardwareFact
from ollama_deploy.lib.hardware import (
    GPU_QUERY,
    ParseError,
    apply_override,
    parse_hardware,
    parse_lscpu_topology,
    parse_nvidia_smi,
    parse_thread_siblings,
)
from tests.unit.hardware_records import (
    FIXTURE_NAMES,
    FIXTURES,
    PROFILES,
    REPLAY,
    gpus_from_profile,
    lines,
    profile,
    section,
    seed,
)

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

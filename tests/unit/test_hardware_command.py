"""The real HardwareFact command run on this machine, checked against /proc and sysconf."""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from ollama_deploy.facts.hardware import HardwareFact
from ollama_deploy.lib.hardware import (
    parse_hardware,
)
from tests.unit.hardware_records import (
    PROFILES,
    REPLAY,
    gpus_from_profile,
)

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

"""Where the hardware tests find their recorded output, and readers for it (tests/unit/test_hardware*.py)."""

import json
from pathlib import Path

from ollama_deploy.lib.hardware import (
    Gpu,
)

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

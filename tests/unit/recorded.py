"""The testbed's recorded machines (testbed/hardware/profiles) as Hardware values for unit tests."""
import json

from ollama_deploy.lib.hardware import Gpu, Hardware
from testbed.container import HARDWARE_DIR

SEED003 = json.loads((HARDWARE_DIR / "profiles/dual_gpu/gpus.json").read_text())
GB10 = json.loads((HARDWARE_DIR / "profiles/dgx_spark/gpus.json").read_text())


def machine(profile, **changes):
    rec = json.loads((HARDWARE_DIR / "profiles" / profile / "hardware.json").read_text())
    base = dict(arch=rec["arch"] or "x86_64", cpu_model=rec["cpu_model"] or "", physical_cores=rec["physical_cores"] or 8,
                threads=rec["threads"] or 16, cpu_flags=frozenset(rec["cpu_flags"] or ()),
                mem_total_mib=rec["mem_total_mib"] or 65536, swap_total_mib=0)
    return Hardware(**{**base, **changes})


def gpus(recording):
    return tuple(Gpu(g["index"], g["pci.bus_id"], g["uuid"], g["name"], g["memory.total"], g["memory.used"],
                     g["compute_cap"], recording["driver_version"]) for g in recording["gpus"])

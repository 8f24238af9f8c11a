"""GPU facts from NVML (a @local deploy) through a stand-in checked against real pynvml."""

import inspect
import warnings

import pytest

from ollama_deploy.lib.hardware import (
    gpus_from_nvml,
    parse_nvidia_smi,
)
from tests.unit.hardware_records import (
    gpus_from_profile,
    section,
)

with warnings.catch_warnings():  # pynvml 13 warns that the nvidia-ml-py module it forwards to is the one to use
    warnings.simplefilter("ignore", FutureWarning)
    import pynvml



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

"""A host's final settings: its data over what its hardware implies, checked against that hardware.

Example (deploy code):
    plan = plan_for(host)          # raises SettingsError listing every problem of this host
    plan.settings.ollama_cpu_quota, plan.hardware.gpus, plan.profile
"""
from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ollama_deploy.control.fleetcache import FleetCacheError, blob_partial, fleet_cache_on, model_for, release_for
from ollama_deploy.control.modelinfo import ModelNotFound, fetch_model_info
from ollama_deploy.control.release import ReleaseError, artifact_for
from ollama_deploy.control.summary import warn
from ollama_deploy.facts.foreign import ForeignConfig
from ollama_deploy.facts.hardware import HardwareFact
from ollama_deploy.facts.ollama import OllamaModels
from ollama_deploy.gocompat.envconfig import ollama_bool, parse_keep_alive
from ollama_deploy.gocompat.names import canonical_model
from ollama_deploy.lib.budget import (
    check_budget,
    context_notes,
    kv_head_size_problems,
    memory_max_bytes,
    overhead_problems,
)
from ollama_deploy.lib.checks import QUANTIZED_KV
from ollama_deploy.lib.derive import derive
from ollama_deploy.lib.hardware import Hardware, ParseError, apply_override, gpus_from_nvml
from ollama_deploy.lib.modelshape import ModelInfoError
from ollama_deploy.lib.profiles import GPU_PROFILES, PROFILES
from ollama_deploy.lib.settings import (
    PREFIX,
    OllamaSettings,
    SettingsError,
    api_url,
    misnamed_keys,
    resolve,
    selected_models,
)
from ollama_deploy.tasks.adopt import foreign_models_dir, verdicts

# GPU library directories in the release artifact this tool installs, per arch (Dockerfile's amd64 and
# arm64 stages, less what scripts/build_linux.sh packs into tarballs of their own); a value naming
# none of them makes Ollama run on the CPU.
LIBRARY_DIRS = {"x86_64": {"cuda_v12", "cuda_v13", "vulkan"}, "aarch64": {"cuda_v12", "cuda_v13"}}
SEPARATE_ARTIFACTS = {"rocm_v7_2": "ollama-linux-amd64-rocm.tar.zst", "mlx_cuda_v13": "ollama-linux-amd64-mlx.tar.zst",
                      "cuda_jetpack5": "ollama-linux-arm64-jetpack5.tar.zst",
                      "cuda_jetpack6": "ollama-linux-arm64-jetpack6.tar.zst"}
GPU_ONLY = ("ollama_cuda_visible_devices", "ollama_cuda_device_order", "ollama_sched_spread",
            "ollama_gpu_overhead", "ollama_llm_library", "ollama_resume_fix", "ollama_vulkan", "ollama_watch_heal")


@dataclass(frozen=True)
class HostPlan:
    profile: str
    hardware: Hardware
    settings: OllamaSettings
    models: dict = field(default_factory=dict)  # name -> ModelInfo, when the budget was checked
    foreign: tuple = ()  # adopt.Directive: what else configures ollama.service there (taken over)
    missing: dict = field(default_factory=dict)  # model -> why the registry does not have it (not pulled)
    models_on_host: dict | None = None  # OllamaModels as the plan read it (None: not read)

    @property
    def wants_gpu(self) -> bool:
        """Ollama should run on this host's NVIDIA GPUs (a GPU profile or GPUs found, and not all hidden)."""
        return ((self.profile in GPU_PROFILES or bool(self.hardware.gpus))
                and (self.settings.ollama_cuda_visible_devices or "").strip() != "-1")


_PLANS: dict[tuple[str, bool], HostPlan] = {}


# Written by `python -m ollama_deploy.bench.tune`, reviewed and committed by the operator
# (the tests use a directory of their own).
TUNED_DIR = Path(os.environ.get("OLLAMA_DEPLOY_TUNED_DIR", "tuned"))


def tuned_data(target) -> dict:
    """The settings a tune chose for this host (tuned/<host>.json, {} when never tuned): over its groups'
    data, under its own inventory data and --data."""
    path = TUNED_DIR / f"{target.name}.json"
    if not path.is_file():
        return {}
    explicit = {**target.inventory.get_host_data(target.name), **target.inventory.get_override_data()}
    return {k: v for k, v in json.loads(path.read_text())["settings"].items() if k not in explicit}


# Set by deploy_ollama(): the calling deploy's settings (under every data layer) and its profile for hosts
# in no profile group. The same for every host of a run, so the fleet check can use them for all hosts.
CALL: dict = {"settings": {}, "profile": None}


def _profile(target) -> str:
    mine = [g for g in target.groups if g in PROFILES]
    if not mine and CALL["profile"]:
        return CALL["profile"]
    if len(mine) != 1:
        where = "no profile group" if not mine else f"several profile groups ({', '.join(mine)})"
        near = [(g, difflib.get_close_matches(g.lower().replace("-", "_"), PROFILES, n=1, cutoff=0.7))
                for g in target.groups if g not in PROFILES]
        hint = "".join(f"; group {g!r}: did you mean {m[0]}?" for g, m in near if m)
        raise SettingsError([f"key profile, value {mine!r}: the host is in {where}; put it in exactly one of "
                             f"{', '.join(PROFILES)}{hint}"])
    return mine[0]


def _hardware_problems(s: OllamaSettings, hw: Hardware, profile: str) -> list[str]:
    problems = []
    if s.ollama_cpu_quota and float(s.ollama_cpu_quota[:-1]) > hw.threads * 100:
        problems.append(f"key ollama_cpu_quota, value {s.ollama_cpu_quota!r}: above the host's {hw.threads} "
                        f"threads (at most {hw.threads * 100}%)")
    if s.ollama_llama_threads and s.ollama_llama_threads > hw.threads:
        # Measured on the testbed: 8 llama-servers of 2 threads on 2 CPUs load and generate in 9.0 s and
        # 16.4 CPU-s, with 1 thread each in 1.5 s and 1.5 CPU-s (ggml's barriers spin).
        problems.append(f"key ollama_llama_threads, value {s.ollama_llama_threads!r}: above the host's {hw.threads} "
                        "threads (ggml's threads wait for each other by spinning, so a thread without a CPU "
                        "burns the others' time)")
    limit = memory_max_bytes(s.ollama_memory_max, hw.mem_total_mib * 2**20)
    if limit and limit > hw.mem_total_mib * 2**20:
        problems.append(f"key ollama_memory_max, value {s.ollama_memory_max!r}: above the host's RAM "
                        f"({hw.mem_total_mib / 1024:.1f} GiB)")
    if not hw.gpus:
        why = f"nvidia-smi fails: {hw.gpu_problem}" if hw.gpu_problem else "no nvidia-smi"
        if profile in GPU_PROFILES:
            problems.append(f"key profile, value {profile!r}: the profile expects NVIDIA GPUs but the host shows "
                            f"none ({why})")
        for key in GPU_ONLY:
            if getattr(s, key) not in (None, False):
                problems.append(f"key {key}, value {getattr(s, key)!r}: does nothing on a host without "
                                f"NVIDIA GPUs ({why})")
        return problems
    if s.ollama_cuda_visible_devices and s.ollama_cuda_visible_devices.strip() != "-1":
        known = {str(g.index) for g in hw.gpus} | {g.uuid for g in hw.gpus}
        for token in s.ollama_cuda_visible_devices.split(","):
            if token.strip() not in known:
                listing = ", ".join(f"{g.index}={g.name}" for g in hw.gpus)
                problems.append(f"key ollama_cuda_visible_devices, value {s.ollama_cuda_visible_devices!r}: "
                                f"GPU {token.strip()} does not exist on this host ({listing})")
    indices = [t.strip() for t in (s.ollama_cuda_visible_devices or "").split(",") if t.strip().isdigit()]
    if indices and len(hw.gpus) > 1 and s.ollama_cuda_device_order != "PCI_BUS_ID":
        # CUDA's own default order is FASTEST_FIRST: its indices need not be nvidia-smi's (PCI) ones.
        problems.append(f"key ollama_cuda_visible_devices, value {s.ollama_cuda_visible_devices!r}: GPU indices "
                        f"follow CUDA_DEVICE_ORDER={s.ollama_cuda_device_order or 'FASTEST_FIRST (CUDA default)'}, "
                        "not nvidia-smi's order: name the GPUs by UUID, or set ollama_cuda_device_order=PCI_BUS_ID")
    if (s.ollama_cuda_visible_devices or "").strip() == "-1" and s.ollama_vulkan is not False and hw.arch == "x86_64":
        # The amd64 release ships lib/ollama/vulkan and OLLAMA_VULKAN defaults to on (envconfig).
        problems.append("key ollama_cuda_visible_devices, value '-1': hides the GPUs from CUDA only; Ollama's "
                        "Vulkan backend (on by default) still runs models on them: also set ollama_vulkan=false")
    arch_dirs = LIBRARY_DIRS.get(hw.arch, set())
    if s.ollama_llm_library and s.ollama_llm_library not in arch_dirs:
        elsewhere = SEPARATE_ARTIFACTS.get(s.ollama_llm_library)
        where = (f"lib/ollama/{s.ollama_llm_library} ships in {elsewhere}, which this tool does not install"
                 if elsewhere else f"no such library directory in the {hw.arch} release")
        problems.append(f"key ollama_llm_library, value {s.ollama_llm_library!r}: {where} "
                        f"({', '.join(sorted(arch_dirs))} are there); Ollama would run on the CPU")
    unsupported = [g for g in hw.gpus if g.compute_cap == "7.2" or float(g.compute_cap or 0) < 6.0]
    if s.ollama_kv_cache_type in QUANTIZED_KV and s.ollama_flash_attention is None and unsupported:
        problems.append(f"key ollama_kv_cache_type, value {s.ollama_kv_cache_type!r}: {unsupported[0].name} "
                        f"(compute {unsupported[0].compute_cap}) fails Ollama's flash attention check, so "
                        "flash attention is off and a quantized KV cache fails to load; use f16")
    return problems


def _foreign_problems(foreign, settings: OllamaSettings, hw: Hardware, data: dict, profile: str,
                      name: str) -> list[str]:
    """Refuse a host configured by someone else, one line per directive, unless ollama_adopt says take it
    over (then the same lines say what is taken over)."""
    def check(key: str, raw: str) -> list[str]:
        kind = str(OllamaSettings.model_fields[key].annotation)  # as Ollama parses the variable
        value = (ollama_bool(raw) if "bool" in kind else raw.split(",") if "list" in kind
                 else int(raw) if "int" in kind and raw.strip().isdigit() else raw)
        try:
            s = settings_from(hw, {**data, key: value}, profile)
        except SettingsError as e:
            return e.problems
        return [p for p in _hardware_problems(s, hw, profile) if p.startswith(f"key {key},")]

    lines = verdicts(foreign, settings, check)
    if settings.ollama_adopt:
        for line in lines:
            warn(name, f"taking over {line}")
        return []
    return lines + ["key ollama_adopt, value False: ollama.service here is configured outside this tool (above); "
                    "set ollama_adopt=true to take the host over (the files are kept in a dated backup)"]


def dubious(s: OllamaSettings, hw: Hardware) -> list[str]:
    """Valid settings that are probably not meant: accepted, with a warning the run's summary repeats."""
    notes = []
    if s.ollama_keep_alive is not None and parse_keep_alive(str(s.ollama_keep_alive)) == 0:
        notes.append(f"ollama_keep_alive is {s.ollama_keep_alive!r}: Ollama unloads a model right after each request, "
                     "so every request pays the model load")
    if not hw.gpus and (s.ollama_num_parallel or 1) > hw.threads:
        notes.append(f"ollama_num_parallel is {s.ollama_num_parallel} on a CPU host with {hw.threads} threads: the "
                     "slots share the threads, so each request gets slower")
    if s.ollama_kv_cache_type in ("q4_0", "q4_1", "iq4_nl"):
        notes.append(f"ollama_kv_cache_type is {s.ollama_kv_cache_type!r}: a 4-bit KV cache costs answer quality; "
                     "q8_0 already halves the cache's memory with little loss")
    if not s.ollama_no_cloud:
        notes.append("ollama_no_cloud is false: Ollama calls ollama.com at every start and offers cloud models")
    return notes


def _local_nvml(target, detected: Hardware) -> Hardware:
    """On `pyinfra @local`, read the GPUs through NVML (pynvml) rather than parsing nvidia-smi."""
    if target.name != "@local":
        return detected
    try:
        import pynvml
    except ImportError:
        return detected
    try:
        return replace(detected, gpus=tuple(gpus_from_nvml(pynvml)), gpu_problem=None)
    except pynvml.NVMLError:  # no driver or no GPU: nvidia-smi's view, and its error text, stand
        return detected


def settings_from(hw: Hardware, data: dict, profile: str | None = None) -> OllamaSettings:
    """The host's `ollama_*` data over what its hardware implies (also used by the testinfra suite)."""
    return resolve({**derive(hw, profile), **{k: v for k, v in data.items() if k.startswith(PREFIX)}})


def hardware_of(detected: Hardware, data: dict) -> Hardware:
    """Detected hardware with the inventory's facts_override applied."""
    try:
        return apply_override(detected, data.get("facts_override"))
    except ParseError as e:
        raise SettingsError([f"key facts_override, value {data.get('facts_override')!r}: {e}"]) from None


def _model_info(model: str, settings: OllamaSettings, digest: str | None = None):
    """With the fleet cache the model is fetched once now and measured from the file; otherwise only
    its manifest and GGUF header are read from the registry, unless `digest` (the manifest digest of
    the model the host already has) was read before: then nothing is. With a site registry the
    control node fetches the whole model later (to load it there): the header read now is kept as
    the start of that download."""
    if fleet_cache_on(settings):
        return model_for(model, settings, digest).info(model)
    keep = functools.partial(blob_partial, settings.ollama_fleet_cache_dir) if settings.ollama_site_registry else None
    return fetch_model_info(model, settings.ollama_registry_url, digest=digest, keep_start=keep)


def plan_for(target, check: bool = True) -> HostPlan:
    """Compute (once per host per run) and check the host's settings; SettingsError lists problems.
    check=False skips the hardware and budget checks (verify reports what the host actually does)."""
    if (target.name, True) in _PLANS:  # a checked plan also serves callers that skip the checks
        return _PLANS[(target.name, True)]
    if not check and (target.name, False) in _PLANS:
        return _PLANS[(target.name, False)]
    profile = _profile(target)
    data = {**PROFILES[profile].settings, **CALL["settings"], **target.data.dict(), **tuned_data(target)}
    hw = hardware_of(_local_nvml(target, target.get_fact(HardwareFact)), data)
    foreign, kept_models_dir = target.get_fact(ForeignConfig)
    if "ollama_models_dir" not in data and (foreign_models_dir(foreign) or kept_models_dir):
        # Models a hand-made or adopted configuration keeps elsewhere stay where they are.
        data = {**data, "ollama_models_dir": foreign_models_dir(foreign) or kept_models_dir}
    settings = settings_from(hw, data, profile)
    problems = (misnamed_keys(data) + _hardware_problems(settings, hw, profile)) if check else []
    if check and foreign:
        problems += _foreign_problems(foreign, settings, hw, data, profile, target.name)
    if check:
        try:  # the artifact and its checksum must be known (with the fleet cache: fetched) before any host is touched
            artifact = artifact_for(settings, hw.arch)
            if fleet_cache_on(settings) and not artifact.local_path:
                release_for(artifact, settings)
        except (ReleaseError, FleetCacheError) as e:
            source = settings.ollama_release_local_dir or settings.ollama_release_base_url
            problems.append(f"key ollama_release_base_url, value {source!r}: {e}")
    infos, missing, on_host = {}, {}, None
    # With the fleet cache the models are fetched and verified now, so a bad one stops the run here.
    wants_info = settings.ollama_check_memory_budget or fleet_cache_on(settings)
    if check and wants_info and selected_models(settings) and not problems:
        # What the host already has (kept in the plan: pyinfra runs a fact's command at every get_fact).
        on_host = target.get_fact(OllamaModels, api=api_url(settings))
        try:
            for m in selected_models(settings):
                try:
                    infos[m] = _model_info(m, settings, on_host.get(canonical_model(m)))
                except ModelNotFound as e:  # that model is not pulled; the others are, and the host fails at the end
                    missing[m] = str(e)
                    warn(target.name, f"{e}: the registry has no such model, so it is not pulled (the host's other "
                                      "models are) and the host fails at the end of the run")
        except FleetCacheError as e:
            key, value = (("ollama_models_local_dir", settings.ollama_models_local_dir)
                          if settings.ollama_models_local_dir else ("ollama_models", selected_models(settings)))
            raise SettingsError([f"key {key}, value {value!r}: {e}"]) from None
        except ModelInfoError as e:
            raise SettingsError([f"key ollama_models, value {selected_models(settings)!r}: cannot check the "
                                 f"memory budget: {e} (set ollama_check_memory_budget=false to skip)"]) from None
    problems += kv_head_size_problems(settings, infos) + overhead_problems(settings, hw)
    if infos and settings.ollama_check_memory_budget:
        problems += check_budget(settings, hw, infos)
    if problems:
        raise SettingsError(problems)
    for note in context_notes(settings, infos) + (dubious(settings, hw) if check else []):
        warn(target.name, note)
    _PLANS[(target.name, check)] = HostPlan(profile, hw, settings, infos, tuple(foreign) if check else (), missing,
                                            on_host)
    return _PLANS[(target.name, check)]

"""Memory budget: each selected model's weights + KV cache must fit where Ollama will put it.

GPU hosts: one GPU (Ollama places a model on a single GPU when it needs at most 80% of that GPU's
free memory), else all visible GPUs together, which Ollama does by itself without OLLAMA_SCHED_SPREAD
(server/sched.go: spread only stops it trying one GPU first). Unified memory (GB10): 80%
of RAM. CPU hosts: the largest `max loaded models` models together under MemoryMax (past it the
kernel kills Ollama). A refusal gives the numbers and the knob to turn.

Example:
    problems = check_budget(settings, hardware, {"qwen2.5-coder:7b": info})
"""
from __future__ import annotations

from collections.abc import Sequence

from ollama_deploy.gocompat.names import canonical_model
from ollama_deploy.lib.checks import QUANTIZED_KV
from ollama_deploy.lib.hardware import Gpu, Hardware
from ollama_deploy.lib.modelshape import ModelInfo, kv_cache_bytes
from ollama_deploy.lib.settings import OllamaSettings

GIB = 2**30
MIB = 2**20
SINGLE_GPU_SHARE = 0.8  # sched.go:1064


def default_context(total_vram_bytes: int) -> int:
    """Ollama's VRAM-tiered default when OLLAMA_CONTEXT_LENGTH is 0 or unset (routes.go:2048-2058)."""
    if total_vram_bytes >= 47 * GIB:
        return 262144
    if total_vram_bytes >= 23 * GIB:
        return 32768
    return 4096


def memory_max_bytes(value: str | None, ram_bytes: int | None = None) -> int | None:
    """Bytes of a MemoryMax= value (systemd.resource-control(5)): bytes with an optional 1024-based
    K/M/G/T/P/E suffix, a percentage of RAM (None without `ram_bytes`), or infinity (None).

    >>> memory_max_bytes("20G"), memory_max_bytes("1.5K"), memory_max_bytes("50%", 2**30), memory_max_bytes("infinity")
    (21474836480, 1536, 536870912, None)
    """
    if value is None or value == "infinity":
        return None
    if value.endswith("%"):
        return int(ram_bytes * float(value[:-1]) / 100) if ram_bytes else None
    suffix = value[-1]
    if suffix in "KMGTPE":
        return int(float(value[:-1]) * 1024 ** ("KMGTPE".index(suffix) + 1))
    return int(value)


def model_parameters(s: OllamaSettings, model: str) -> dict:
    """The ollama_model_parameters entry of `model`, whatever form of its name the key uses."""
    return {canonical_model(k): v for k, v in s.ollama_model_parameters.items()}.get(canonical_model(model), {})


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def gpus_ollama_sees(s: OllamaSettings, gpus: Sequence[Gpu]) -> list[Gpu]:
    """The GPUs left after CUDA_VISIBLE_DEVICES (indices in nvidia-smi's PCI order, or UUIDs); CUDA
    stops reading the list at the first entry that names no device, so "-1" hides them all."""
    if s.ollama_cuda_visible_devices is None:
        return list(gpus)
    seen = []
    for item in (x.strip() for x in s.ollama_cuda_visible_devices.split(",")):
        match = [g for g in gpus if str(g.index) == item or (item.startswith("GPU-") and g.uuid.startswith(item))]
        if not match:
            break
        seen.append(match[0])
    return seen


def default_context_vram(s: OllamaSettings, hw: Hardware) -> int:
    """The VRAM total Ollama tiers the default context by (routes.go): each GPU it found, less
    OLLAMA_GPU_OVERHEAD; unified memory (GB10) counts the system's."""
    seen = gpus_ollama_sees(s, hw.gpus)
    overhead = s.ollama_gpu_overhead or 0
    if seen and all(g.memory_total_mib is None for g in seen):
        return hw.mem_total_mib * MIB
    return sum(max(g.memory_total_mib * MIB - overhead, 0) for g in seen if g.memory_total_mib is not None)


def overhead_problems(s: OllamaSettings, hw: Hardware) -> list[str]:
    """Ollama subtracts the overhead from each GPU's total as unsigned integers: a larger overhead wraps
    around to a huge total, and the default context jumps to its top tier (262144 tokens)."""
    big = [g for g in gpus_ollama_sees(s, hw.gpus)
           if g.memory_total_mib is not None and (s.ollama_gpu_overhead or 0) > g.memory_total_mib * MIB]
    return [f"key ollama_gpu_overhead, value {s.ollama_gpu_overhead}: more than GPU {big[0].index}'s "
            f"{big[0].memory_total_mib} MiB; Ollama's unsigned subtraction wraps around and the default context "
            "becomes 262144 tokens"] if big else []


def check_budget(s: OllamaSettings, hw: Hardware, infos: dict[str, ModelInfo]) -> list[str]:
    """One line per model that does not fit where Ollama will put it."""
    seen = gpus_ollama_sees(s, hw.gpus)
    visible = [g for g in seen if g.memory_total_mib is not None]
    unified = bool(seen) and not visible
    vram_total = default_context_vram(s, hw)
    parallel = s.ollama_num_parallel or 1
    kv_type = s.ollama_kv_cache_type or "f16"
    needs = {}
    for model, info in infos.items():
        params = model_parameters(s, model)
        ctx = min(int(params.get("num_ctx") or s.ollama_context_length or default_context(vram_total)),
                  info.context_length)
        slots = info.slots(parallel)  # embedding models and some families get one (sched.go)
        kv = kv_cache_bytes(info, ctx, slots, kv_type)
        needs[model] = (info.weights_bytes + kv, f"weights {_gib(info.weights_bytes)} + KV cache {_gib(kv)} "
                                                 f"at context {ctx} x {slots} parallel, {kv_type}")
    knobs = "lower ollama_context_length or ollama_num_parallel, " + (
        "" if kv_type in QUANTIZED_KV else "set ollama_kv_cache_type=q8_0, ") + "or pick a smaller model"
    problems = []
    if visible:
        free = [((g.memory_total_mib or 0) - (g.memory_used_mib or 0)) * MIB * SINGLE_GPU_SHARE for g in visible]
        for model, (need, how) in needs.items():
            if need <= sum(free):  # on one GPU where it fits, else across all of them
                continue
            where = (f"the largest GPU has {_gib(max(free))} usable (80% of free) and all GPUs together "
                     f"{_gib(sum(free))}")
            problems.append(f"key ollama_models, value {model!r}: needs {_gib(need)} ({how}) but {where}: {knobs}")
        return problems
    limit = memory_max_bytes(s.ollama_memory_max, hw.mem_total_mib * MIB) or hw.mem_total_mib * MIB
    if unified:
        limit = min(limit, int(hw.mem_total_mib * MIB * SINGLE_GPU_SHARE))
    loaded = s.ollama_max_loaded_models or 3 * max(len(hw.gpus), 1)
    largest = sorted(needs.items(), key=lambda kv: kv[1][0], reverse=True)[:loaded]
    together = sum(need for _, (need, _) in largest)
    if together > limit:
        detail = "; ".join(f"{m}: {_gib(n)} ({how})" for m, (n, how) in largest)
        what = "80% of unified memory" if unified else ("MemoryMax" if s.ollama_memory_max else "RAM")
        loaded_text = "needs" if len(largest) == 1 else f"and {len(largest) - 1} more loaded together need"
        problems.append(f"key ollama_models, value {[m for m, _ in largest]!r}: {largest[0][0]} {loaded_text} "
                        f"{_gib(together)} but {what} is {_gib(limit)} ({detail}): {knobs}"
                        + (", or lower ollama_max_loaded_models" if len(largest) > 1 else ""))
    return problems


# ggml block sizes (elements per block) of the quantized KV cache types Ollama passes to llama-server.
KV_BLOCK = {kv_type: 32 for kv_type in QUANTIZED_KV}


def kv_head_size_problems(s: OllamaSettings, infos: dict[str, ModelInfo]) -> list[str]:
    """A quantized KV cache needs head sizes its block divides, or llama.cpp refuses the context and
    the model never loads (measured on 0.32.15: `K cache type q8_0 with block size 32 does not divide
    n_embd_head_k=16`)."""
    kv_type = s.ollama_kv_cache_type
    block = KV_BLOCK.get(kv_type or "")
    problems: list[str] = []
    if not block:
        return problems
    for model, info in infos.items():
        sizes = {"key": info.key_length, "value": info.value_length}
        bad = ", ".join(f"{what} head size {n}" for what, n in sizes.items() if n % block)
        if bad:
            problems.append(f"key ollama_kv_cache_type, value {kv_type!r}: {model} has {bad}, which {kv_type}'s "
                            f"block of {block} does not divide, so llama.cpp refuses the cache and the model never "
                            "loads: use f16 on this host, or another model")
    return problems


def context_notes(s: OllamaSettings, infos: dict[str, ModelInfo]) -> list[str]:
    """Models asked for a longer context than they were trained on: Ollama clamps it (llm/server.go,
    'requested context size too large for model'), so the setting does less than it says there."""
    notes = []
    for model, info in infos.items():
        params = model_parameters(s, model)
        asked, key = ((params["num_ctx"], f"num_ctx of {model} in ollama_model_parameters") if params.get("num_ctx")
                      else (s.ollama_context_length, "ollama_context_length"))
        if asked and info.context_length and int(asked) > info.context_length:
            notes.append(f"{key} is {asked} but {model} was trained on {info.context_length} tokens: "
                         f"Ollama runs it at {info.context_length}")
    return notes

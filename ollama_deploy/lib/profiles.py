"""The host profiles: one declaration each of what a kind of machine needs beyond the derived values.

A host takes its profile from the inventory group of the same name (or from ``deploy_ollama(profile=...)``).
A profile's values sit under every data layer: group data, host data and ``--data`` override them.
Values the hardware implies (CPU quota, memory limit, GPU order) are derived, not listed here
(``ollama_deploy.lib.derive``).

Example:
    PROFILES["cpu_xeon"].settings["ollama_kv_cache_type"]   # "q8_0"
    GPU_PROFILES                                            # ("dual_gpu", "dgx_spark")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    gpu: bool  # the host is expected to show NVIDIA GPUs; without them the deploy refuses it
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()  # what hand-tuned hosts of this kind set that does nothing or harms


PROFILES: dict[str, Profile] = {
    "cpu_xeon": Profile(
        gpu=False,
        description="CPU-only Xeon (the hand-tuned E5-2670 v3 host: 12 cores / 24 threads, 32 GB, AVX2)",
        settings={
            "ollama_context_length": 8192,
            "ollama_num_parallel": 4,
            "ollama_max_loaded_models": 3,
            # A q8_0 cache needs flash attention, which the CPU backend has.
            "ollama_flash_attention": True,
            "ollama_kv_cache_type": "q8_0",
            "ollama_cpu_weight": 100,
        },
        left_out=(
            "OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS, VECLIB_MAXIMUM_THREADS: Ollama 0.32.15 reads "
            "none of them; the thread count is ollama_llama_threads (LLAMA_ARG_THREADS), or per model num_thread",
            "OLLAMA_LLM_LIBRARY=cpu_avx2: names no library directory; CPU variants are chosen at load time",
        )),
    "dual_gpu": Profile(
        gpu=True,
        description="Two NVIDIA GPUs (the hand-tuned Quadro P4000 8 GB + GTX 1060 6 GB host, Pascal 6.1)",
        settings={
            "ollama_flash_attention": True,  # Pascal (6.1) passes Ollama's flash attention support check
            "ollama_keep_alive": "1h",
            "ollama_resume_fix": True,  # the host lost its GPUs to the CPU after suspend/resume
        },
        left_out=(
            "OLLAMA_LLM_LIBRARY=cuda: names no library directory, so inference falls back to the CPU",
            "OLLAMA_NO_CUDA, OLLAMA_NUM_GPU_LAYERS: never read; GPU layers are the per-model parameter num_gpu",
            "OLLAMA_SCHED_SPREAD=1: a model that fits no single GPU already goes across both; with it every "
            "model is split and pays the PCIe traffic between the cards",
        )),
    "dgx_spark": Profile(
        gpu=True,
        description="NVIDIA DGX Spark (one GB10, compute 12.1, arm64, 128 GB unified memory)",
        settings={
            "ollama_num_parallel": 4,
            "ollama_max_loaded_models": 3,
            "ollama_keep_alive": "30m",
            # Flash attention misbehaved on sm_121 when the host was tuned; derive() also turns it off.
            "ollama_flash_attention": False,
        },
        left_out=("OLLAMA_NUM_THREADS: never read; the thread count is ollama_llama_threads (LLAMA_ARG_THREADS, "
                  "read by llama-server), or per model num_thread",)),
}

GPU_PROFILES = tuple(name for name, profile in PROFILES.items() if profile.gpu)


def profile_settings(groups) -> dict[str, Any]:
    """The values of the one profile among a host's groups ({} when it is in none, or in several)."""
    mine = [g for g in groups if g in PROFILES]
    return dict(PROFILES[mine[0]].settings) if len(mine) == 1 else {}

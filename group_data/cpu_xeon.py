"""CPU-only Xeon host (seed 000: E5-2670 v3, 12 cores / 24 threads, 32 GB, AVX2).

Derived from the hardware, not set here (tasks/derive.py): on seed 000's machine CPUQuota=2000%
(20 of 24 threads) and MemoryMax=20G (5/8 of 32 GB), the seed's own figures.

Left out on purpose, because Ollama 0.32.15 never reads them (shared/reference §3):
OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS, VECLIB_MAXIMUM_THREADS. Thread count
is a per-model parameter (num_thread in ollama_model_parameters). OLLAMA_LLM_LIBRARY=cpu_avx2 is
left out too: it names no library directory, and CPU variants have been picked automatically
since v0.5.8.
"""

ollama_context_length = 8192
ollama_num_parallel = 4
ollama_max_loaded_models = 3
# q8_0 needs flash attention, so flash attention is set explicitly (CPU supports it).
ollama_flash_attention = True
ollama_kv_cache_type = "q8_0"
ollama_cpu_weight = 100

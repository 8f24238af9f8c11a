"""NVIDIA DGX Spark (seed 001: one GB10, compute 12.1, arm64, 128 GB unified memory).

The arm64 release artifact follows from the host's arch. Flash attention off is also derived
for any GB10 (tasks/derive.py); it is stated here because it is this profile's known fix.

Left out on purpose: OLLAMA_NUM_THREADS is never read by Ollama (shared/reference §3).
Thread count is a per-model parameter (num_thread in ollama_model_parameters).
"""

ollama_num_parallel = 4
ollama_max_loaded_models = 3
ollama_keep_alive = "30m"
ollama_flash_attention = False  # seed 001: sm_121 lacked flash attention support at the time

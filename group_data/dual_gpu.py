"""Two NVIDIA GPUs (seed 003: Quadro P4000 8 GB + GTX 1060 6 GB, Pascal, compute 6.1).

Derived from the hardware, not set here (tasks/derive.py): CUDA_DEVICE_ORDER=PCI_BUS_ID and
CUDA_VISIBLE_DEVICES listing every GPU in PCI bus order ("0,1" on seed 003's machine).

Left out on purpose (shared/reference §3):
- OLLAMA_LLM_LIBRARY=cuda names no library directory, so it forces CPU-only inference.
- OLLAMA_NO_CUDA and OLLAMA_NUM_GPU_LAYERS are never read. GPU layers are the per-model
  num_gpu parameter.
- OLLAMA_SCHED_SPREAD=1 (seed 003's way to use both GPUs): without it Ollama already puts a model
  that fits no single GPU across both (server/sched.go); with it every model, however small, is
  split over both cards and pays the PCIe traffic between them.
"""

ollama_flash_attention = True  # Pascal (6.1) passes Ollama's flash attention support check
ollama_keep_alive = "1h"
ollama_resume_fix = True  # seed 003: GPUs lost to the CPU after suspend/resume

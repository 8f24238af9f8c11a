"""Model placement: how much of a model goes on which GPUs, with what context and batch.

Mirrors the placement half of server/sched.go (selectLlamaServerPlacement,
automaticGenerationBatch) and the llama-server memory prediction.  Kept out
of scheduler.py, which owns runners, slots and keep-alive; Scheduler inherits
Placement, whose methods read its env, log, devices, system, runners and
gpu_used.
"""

from __future__ import annotations

import dataclasses
import os

from ollama_deploy.gocompat import gguf

from .devices import GIB, MIB
from .model import Model


@dataclasses.dataclass
class Plan:
    """Everything decided before llama-server would be started."""

    num_parallel: int
    num_ctx: int  # per slot, clamped to the model's context_length
    requested_ctx: int
    train_ctx: int
    predicted: int
    gpus: list
    main_gpu: int | None
    flash_attention: str  # on | off | auto
    num_batch: int
    use_mmap: bool | None
    mmap_auto: bool
    layers: int  # offloaded
    total_layers: int
    size: int
    size_vram: int
    selection_log: tuple | None
    needs_eviction: bool


class Placement:
    """The placement methods of Scheduler."""

    def _available(self, gpu) -> int:
        """availableMemoryForGPU: free memory (less what this server's runners hold), an iGPU's capped
        by the system's. Neither OLLAMA_GPU_OVERHEAD nor the minimum enters placement (sched.go)."""
        free = max(gpu.free - self.gpu_used.get(gpu.pci_id, 0), 0)
        return self.system.free if gpu.integrated and 0 < self.system.free < free else free

    def _logged_available(self, gpu) -> int:
        """The "gpu memory" line's available: free less overhead and minimum, 0 below them (sched.go:616)."""
        free = max(gpu.free - self.gpu_used.get(gpu.pci_id, 0), 0)
        reserve = self.env.gpu_overhead + gpu.minimum_memory()
        return free - reserve if free > reserve else 0

    def plan(self, model: Model, opts: dict, batch_auto: bool) -> Plan:
        kv = model.kv()
        family = model.config.get("model_family") or gguf.architecture(kv)
        np = gguf.parallel_slots(self.env.num_parallel, family, gguf.is_embedding(kv))
        if family in gguf.SINGLE_SLOT_FAMILIES and not gguf.is_embedding(kv) and max(self.env.num_parallel, 1) != 1:
            self.log.warn("sched.go:509", "model architecture does not currently support parallel requests",
                          "architecture", family)
        train = gguf.arch_uint(kv, "context_length")
        blocks = gguf.arch_uint(kv, "block_count")
        emb = gguf.arch_uint(kv, "embedding_length")
        heads = gguf.arch_uint(kv, "attention.head_count", 1) or 1
        kv_heads = gguf.arch_uint_min(kv, "attention.head_count_kv", heads)
        requested = opts["num_ctx"]
        num_ctx = min(requested, train) if 0 < train < requested else requested
        predicted_ctx = num_ctx * np
        weights = file_size(model.model_path)
        predicted = weights + 2 * blocks * kv_heads * (emb // heads) * predicted_ctx * 2  # llama_server.go:2678
        gpus = [] if opts["num_gpu"] == 0 else list(self.devices)
        selected, main_gpu, sel_log = self._select(gpus, predicted, opts)
        fa = self._flash_attention(selected)
        num_batch = opts["num_batch"]
        if batch_auto and gguf.is_embedding(kv):  # DefaultEmbeddingNumBatchForContext (llama_server.go)
            num_batch = min(2048, requested) if requested > 0 else 2048
        elif batch_auto:
            num_batch = self._auto_batch(predicted_ctx, predicted, selected, fa)
        use_mmap, mmap_auto = opts["use_mmap"], False
        if use_mmap is None and (opts["num_gpu"] == 0 or not selected):
            use_mmap, mmap_auto = False, True
        total_layers = blocks + 1
        capacity = sum(self._available(g) for g in selected)
        want = total_layers if opts["num_gpu"] < 0 else min(opts["num_gpu"], total_layers)
        if not selected:
            layers = 0
        elif predicted <= capacity:
            layers = want
        else:
            layers = min(want, total_layers * capacity // max(predicted, 1))
        size = predicted
        size_vram = size if layers == total_layers else size * layers // total_layers
        surcharge = 2 * GIB if num_batch >= 2048 else 768 * MIB if num_batch >= 1024 else 0
        evict = bool(selected) and bool(self.runners) and predicted + surcharge > capacity * 80 // 100
        return Plan(np, num_ctx, requested, train, predicted, selected, main_gpu, fa, num_batch, use_mmap,
                    mmap_auto, layers, total_layers, size, size_vram, sel_log, evict)

    def _select(self, gpus, predicted, opts):
        """selectLlamaServerPlacement: single best GPU unless spread / explicit main_gpu."""
        main = opts.get("main_gpu")
        if len(gpus) <= 1 or opts["num_gpu"] == 0:
            return gpus, main, None
        groups: dict[str, list] = {}
        for g in gpus:
            groups.setdefault(g.library, []).append(g)

        def better(c, cur):
            if c.integrated != cur.integrated:
                return not c.integrated
            return self._available(c) > self._available(cur)

        if main is not None:
            best = None
            for group in groups.values():
                if 0 <= main < len(group) and (best is None or better(group[main], best)):
                    best = group[main]
            if best is None:
                self.log.warn("sched.go:987", "requested main_gpu is outside the selected GPU group; passing value through to llama-server",  # noqa: E501 (the text as the program prints it)
                              "main_gpu", main, "gpu_count", len(gpus))
                return gpus, main, None
            return [best], 0, ("sched.go:995", "selecting requested single GPU for llama-server model", best, main)
        if not self.env.sched_spread and predicted > 0:
            best = None
            for g in gpus:
                if predicted > self._available(g) * 80 // 100:
                    continue
                if best is None or better(g, best):
                    best = g
            if best is not None:
                return [best], 0, ("sched.go:1013", "selecting single GPU for llama-server model", best, None)
        group = max(groups.values(), key=lambda grp: sum(self._available(g) for g in grp))
        return group, None, None

    def _flash_attention(self, gpus) -> str:
        """LlamaServerFlashAttention."""
        if self.env.flash_attention is not None:
            return "on" if self.env.flash_attention else "off"
        if not all(g.flash_attention_supported() for g in gpus):
            return "off"
        return "auto"

    def _auto_batch(self, ctx, predicted, gpus, fa) -> int:
        """automaticGenerationBatch (sched.go)."""
        cuda = [g for g in gpus if g.library == "CUDA"]
        if fa == "off" and cuda:
            small = any(0 < (min(g.free, g.total) if g.total else g.free) <= 8 * GIB for g in cuda)
            return 256 if ctx > 4096 and small else 512
        batch = 2048 if ctx > 32768 else 1024 if ctx > 4096 else 512
        avail = sum(self._available(g) for g in gpus)
        while batch > 512 and not self._batch_fits(batch, predicted, avail):
            batch = 1024 if batch > 1024 else 512
        return batch

    @staticmethod
    def _batch_fits(batch, predicted, avail) -> bool:
        if predicted == 0 or avail == 0:
            return True
        threshold = avail * 80 // 100
        if predicted > threshold:
            return False
        if batch >= 2048 and predicted > avail * 60 // 100:
            return False
        if batch >= 1024 and predicted > avail * 75 // 100:
            return False
        surcharge = 2 * GIB if batch >= 2048 else 768 * MIB if batch >= 1024 else 0
        return surcharge <= threshold - predicted


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0

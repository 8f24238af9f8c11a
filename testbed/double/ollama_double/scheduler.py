"""Model scheduler: placement, simulated llama-server loads, slots, keep-alive.

Mirrors server/sched.go + llm/llama_server.go of Ollama v0.32.15 closely
enough that the journal (``starting llama-server`` argv, ``offloaded N/M
layers``) and /api/ps show what real Ollama would decide for the same
environment, GPUs and model.  No process is started: the "load" is a sleep of
``load_seconds`` (config.json).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from pathlib import Path

import gguf  # copy of tasks/gguf.py, next to this package in the release tree

from . import options as op
from .discovery import GIB, MIB, human_bytes2
from .store import Model

BUSY_MSG = "server busy, please try again.  maximum pending requests exceeded"
VALID_KV_TYPES = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}
QUANTIZED_KV_TYPES = {"q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}
KV_BLOCK_SIZE = {t: 32 for t in QUANTIZED_KV_TYPES}  # ggml block size; f32/f16/bf16 have 1
# llm/status.go errorPrefixes: a llama-server output line holding one is kept for the load error
STATUS_ERROR_PREFIXES = ("mlx:", "MLX:", "panic:", "fatal error:", "error:", "Error:", "CUDA error", "ROCm error",
                         "cudaMalloc failed", '"ERR"', "error loading model", "GGML_ASSERT",
                         "Deepseek2 does not support K-shift", "signal arrived during cgo execution",
                         "llama_init_from_model:")
UNPARSED_BUFFERS_FLAG = "/run/ollama-double/llama-server-log-format-changed"
_NO_TIMER_NS = 10 * 365 * 24 * 3600 * 10**9  # "forever" keep-alives need no timer


class Busy(Exception):
    def __init__(self):
        super().__init__(BUSY_MSG)


class LoadError(Exception):
    pass


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


@dataclasses.dataclass
class Runner:
    key: str
    model: Model
    opts: dict
    plan: Plan
    session_ns: int
    state: str = "loading"
    active: int = 0
    expires_at_ns: int = 0
    timer: threading.Timer | None = None
    argv: list = dataclasses.field(default_factory=list)

    @property
    def fully_on_gpu(self) -> bool:
        return self.plan.layers > 0 and self.plan.layers == self.plan.total_layers


class Scheduler:
    def __init__(self, env, log, devices, system, lib_dir, cfg, default_num_ctx: int):
        self.env, self.log, self.devices, self.system = env, log, devices, system
        self.lib_dir = lib_dir
        self.cfg = cfg
        self.default_num_ctx = default_num_ctx
        self.max_loaded = env.max_loaded_models or 3 * max(len(devices), 1)
        self.cv = threading.Condition()
        self.runners: dict[str, Runner] = {}
        self.waiting = 0
        self.loading = False
        self.gpu_used: dict[str, int] = {}

    # -- options ---------------------------------------------------------------
    def options(self, model: Model, request_opts: dict | None) -> tuple[dict, bool, bool]:
        """modelOptions: defaults <- model params layer <- request options."""
        opts = op.defaults(self.env.context_length or self.default_num_ctx)
        op.apply(opts, model.params, self.log)
        op.apply(opts, request_opts, self.log)
        ctx_auto = "num_ctx" not in (request_opts or {}) and "num_ctx" not in model.params and self.env.context_length == 0
        batch_auto = "num_batch" not in (request_opts or {}) and "num_batch" not in model.params
        return opts, ctx_auto, batch_auto

    # -- placement -------------------------------------------------------------
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
        weights = _file_size(model.model_path)
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
                self.log.warn("sched.go:987", "requested main_gpu is outside the selected GPU group; passing value through to llama-server",
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

    # -- acquire / release ----------------------------------------------------------
    def _needs_reload(self, r: Runner, opts: dict, batch_auto: bool) -> bool:
        want_ctx = min(opts["num_ctx"], r.plan.train_ctx) if 0 < r.plan.train_ctx < opts["num_ctx"] else opts["num_ctx"]
        if want_ctx != r.plan.num_ctx:
            return True
        for k in ("num_gpu", "main_gpu", "num_thread"):
            if opts[k] != r.opts[k]:
                return True
        if not batch_auto and opts["num_batch"] != r.plan.num_batch:
            return True
        return opts["use_mmap"] is not None and opts["use_mmap"] != r.plan.use_mmap

    def acquire(self, model: Model, opts: dict, batch_auto: bool, keep_alive_ns: int | None):
        """Return (runner, load_duration_ns); raises Busy or LoadError."""
        key = model.model_path
        start = time.monotonic_ns()
        with self.cv:
            if self.waiting >= self.env.max_queue:
                raise Busy()
            self.waiting += 1
            try:
                while True:
                    r = self.runners.get(key)
                    if r is not None:
                        if r.state == "loading":
                            self.cv.wait(0.5)
                        elif self._needs_reload(r, opts, batch_auto):
                            if r.active == 0:
                                self._unload(r)
                            else:
                                self.cv.wait(0.5)
                        elif r.active < r.plan.num_parallel:
                            r.active += 1
                            self._stop_timer(r)
                            if keep_alive_ns is not None:
                                r.session_ns = keep_alive_ns
                            return r, 0
                        else:
                            self.cv.wait(0.5)
                        continue
                    if self.loading:
                        self.cv.wait(0.5)
                        continue
                    if len(self.runners) >= self.max_loaded:
                        if not self._evict_idle():
                            self.cv.wait(0.5)
                        continue
                    plan = self.plan(model, opts, batch_auto)
                    if plan.needs_eviction:
                        if self._evict_idle():
                            continue
                        if any(x.active for x in self.runners.values()):
                            self.cv.wait(0.5)
                            continue
                    session = self.env.keep_alive if keep_alive_ns is None else keep_alive_ns
                    r = Runner(key, model, dict(opts), plan, session)
                    self.runners[key] = r
                    self.loading = True
                    break
            finally:
                self.waiting -= 1
        try:
            self._load(r)
        except LoadError:
            with self.cv:
                self._forget(r)
                self.loading = False
                self.cv.notify_all()
            raise
        with self.cv:
            r.state = "ready"
            r.active = 1
            for g in r.plan.gpus:  # the memory this runner now holds on each GPU
                share = r.plan.size_vram // max(len(r.plan.gpus), 1)
                self.gpu_used[g.pci_id] = self.gpu_used.get(g.pci_id, 0) + share
            r.expires_at_ns = time.time_ns() + r.session_ns  # Go's Time.Add does not wrap
            self.loading = False
            self.log.info("sched.go:728", "loaded runners", "count", len(self.runners))
            self.cv.notify_all()
        return r, time.monotonic_ns() - start

    def release(self, r: Runner) -> None:
        with self.cv:
            r.active = max(r.active - 1, 0)
            if r.active == 0 and self.runners.get(r.key) is r:
                now = time.time_ns()
                r.expires_at_ns = now + r.session_ns
                if r.session_ns == 0:
                    self.log.debug("sched.go:387", "runner with zero duration has gone idle, expiring to unload",
                                   "runner", r.model.short_name)
                    self._unload(r)
                elif r.session_ns < _NO_TIMER_NS:
                    self._stop_timer(r)
                    r.timer = threading.Timer(r.session_ns / 1e9, self._expire, args=(r,))
                    r.timer.daemon = True
                    r.timer.start()
            self.cv.notify_all()

    def expire_model(self, model: Model) -> None:
        """keep_alive 0 with an empty prompt: unload now if idle (else when idle)."""
        with self.cv:
            r = self.runners.get(model.model_path)
            if r is not None and r.state == "ready":
                r.session_ns = 0
                if r.active == 0:
                    self._unload(r)
                self.cv.notify_all()

    def _expire(self, r: Runner) -> None:
        with self.cv:
            if self.runners.get(r.key) is r and r.active == 0 and r.state == "ready":
                self.log.debug("sched.go:396", "timer expired, expiring to unload", "runner", r.model.short_name)
                self._unload(r)
                self.cv.notify_all()

    def _evict_idle(self) -> bool:
        idle = [x for x in self.runners.values() if x.active == 0 and x.state == "ready"]
        if not idle:
            return False
        self._unload(min(idle, key=lambda x: x.expires_at_ns))
        return True

    def _stop_timer(self, r: Runner) -> None:
        if r.timer is not None:
            r.timer.cancel()
            r.timer = None

    def _forget(self, r: Runner) -> None:
        if self.runners.get(r.key) is r:
            del self.runners[r.key]
        if r.state != "ready":
            return
        r.state = "unloaded"
        for g in r.plan.gpus:
            share = r.plan.size_vram // max(len(r.plan.gpus), 1)
            self.gpu_used[g.pci_id] = max(self.gpu_used.get(g.pci_id, 0) - share, 0)

    def _unload(self, r: Runner) -> None:
        self._stop_timer(r)
        self._forget(r)
        self.log.debug("sched.go:465", "sending an unloaded event", "runner", r.model.short_name)

    def loaded(self) -> list[Runner]:
        with self.cv:
            return [r for r in self.runners.values() if r.state == "ready"]

    def stop_all(self) -> None:
        with self.cv:
            for r in list(self.runners.values()):
                self._stop_timer(r)

    # -- the simulated llama-server --------------------------------------------------
    def argv(self, r: Runner, port: int) -> list[str]:
        """startLlamaServer's argv, flag for flag (llm/llama_server.go:369-420)."""
        p, o, m = r.plan, r.opts, r.model
        a = [str(self.lib_dir / "llama-server"), "--model", m.model_path, "--port", str(port),
             "--host", "127.0.0.1", "--no-webui", "--offline", "-c", str(p.num_ctx * p.num_parallel),
             "-np", str(p.num_parallel), "--log-verbosity", "4", "--no-log-prefix", "--no-log-timestamps"]
        if m.has_template and self.env.go_template:
            a += ["--no-jinja", "--chat-template", "chatml"]
        if any(g.integrated and g.library == "CUDA" for g in p.gpus):
            a += ["--load-mode", "dio"]
        elif p.use_mmap is False:
            a += ["--load-mode", "none"]
        if self.env.kv_cache_type:
            a += ["--cache-type-k", self.env.kv_cache_type, "--cache-type-v", self.env.kv_cache_type]
        a += ["--flash-attn", p.flash_attention]
        batch = p.num_batch
        if gguf.is_embedding(m.kv()):  # appendBatchArgs: the batch at most the whole context
            a.append("--embedding")
            batch = min(batch, p.num_ctx * p.num_parallel) if p.num_ctx > 0 else batch
        if batch > 0:
            a += ["-b", str(batch), "-ub", str(batch)]
        if o["num_gpu"] > 0:
            a += ["-ngl", str(o["num_gpu"])]
        elif o["num_gpu"] == 0:
            a += ["-ngl", "0"]
        if o["num_thread"] > 0:
            a += ["-t", str(o["num_thread"])]
        if p.main_gpu is not None:
            a += ["--split-mode", "none", "--main-gpu", str(p.main_gpu)]
        if (m.config.get("model_family") or "") != "deepseek2":
            a += ["--context-shift"]
            if o["num_keep"] > 0:
                a += ["--keep", str(o["num_keep"])]
        return a

    def _load(self, r: Runner) -> None:
        log, p, m = self.log, r.plan, r.model
        t0 = time.monotonic()
        if p.selection_log:
            src, msg, g, requested = p.selection_log
            extra = ("requested_main_gpu", requested) if requested is not None else ()
            tail = ("predicted", human_bytes2(p.predicted)) if requested is None else ()
            log.info(src, msg, *extra, "main_gpu", 0, "id", g.id, "filter_id", g.filter_id, "library", g.library,
                     "name", g.name, "description", g.description, "integrated", g.integrated, *tail,
                     "available", human_bytes2(self._available(g)))
        if p.mmap_auto:
            log.info("sched.go:1147", "disabling mmap for llama-server load by default", "model", m.model_path,
                     "reason", "cpu")
        log.info("server.go:109", "using llama-server for model", "model", m.model_path)
        if p.requested_ctx != p.num_ctx:
            log.warn("server.go:114", "requested context size too large for model", "num_ctx", p.requested_ctx,
                     "n_ctx_train", p.train_ctx)
        r.argv = self.argv(r, _free_port())
        log.info("llama_server.go:433", "starting llama-server", "cmd", " ".join(r.argv))
        s = self.system
        log.info("sched.go:613", "system memory", "total", human_bytes2(s.total), "free", human_bytes2(s.free),
                 "free_swap", human_bytes2(s.free_swap))
        for g in p.gpus:
            log.info("sched.go:620", "gpu memory", "id", g.id, "library", g.library,
                     "available", human_bytes2(self._logged_available(g)), "free", human_bytes2(g.free),
                     "minimum", human_bytes2(g.minimum_memory()), "overhead", human_bytes2(self.env.gpu_overhead))
        log.info("llama_server.go:1048", "loading model via llama-server", "model", m.model_path)
        log.info("llama_server.go:1295", "waiting for llama-server to start responding")
        status: list[str] = []  # what Ollama's StatusWriter keeps of llama-server's output

        def out(line: str) -> None:
            log.raw(line)
            hits = [(line.find(x), x) for x in STATUS_ERROR_PREFIXES if x in line]
            if hits:
                i, prefix = min(hits)
                status.append(prefix + line[i + len(prefix):].rstrip(" \t\r"))

        out("ollama-deploy test double: simulated llama-server, no model is executed")
        kvt = self.env.kv_cache_type
        if kvt and kvt not in VALID_KV_TYPES:
            time.sleep(0.05)
            out(f'error while handling argument "--cache-type-k": Unsupported cache type: {kvt}')
            self._fail(r, "llama-server process has terminated: exit status 1")
        # llama_init_from_model runs twice: in the memory-fit pass (before the weights load, which
        # logs no auto-enable line) and for the real context; a failure prints its line each time.
        init_error = self._kv_init_error(m, kvt, p.flash_attention)
        if init_error:
            out(f"llama_init_from_model: {init_error}")
        for i, g in enumerate(p.gpus):
            log.raw(f"llama_model_load_from_file_impl: using device {g.library}{i} ({g.description}) ({g.pci_id}) - "
                    f"{max(g.free - self.gpu_used.get(g.pci_id, 0), 0) // MIB} MiB free")
        time.sleep(float(self.cfg.get("load_seconds", 0.3)))
        log.raw(f"load_tensors: offloaded {p.layers}/{p.total_layers} layers to GPU")
        weights = _file_size(m.model_path)
        gpu_w = weights * p.layers // p.total_layers
        kv_bytes = p.size - weights
        gpu_kv = kv_bytes * p.layers // p.total_layers
        # Fault injection: a llama-server whose buffer lines Ollama cannot parse (a changed log format).
        unparsed = Path(UNPARSED_BUFFERS_FLAG).exists()
        buffer = "model buffer:" if unparsed else "model buffer size ="
        for i, g in enumerate(p.gpus):
            n = max(len(p.gpus), 1)
            log.raw(f"load_tensors: {g.library + str(i):>12} {buffer} {gpu_w / n / MIB:8.2f} MiB")
        log.raw(f"load_tensors: {'CPU_Mapped' if p.use_mmap is not False else 'CPU':>12} {buffer} "
                f"{(weights - gpu_w) / MIB:8.2f} MiB")
        if kvt in QUANTIZED_KV_TYPES and p.flash_attention == "auto":
            out("llama_init_from_model: enabling flash_attn since it is required for quantized V cache")
        if init_error:
            out(f"llama_init_from_model: {init_error}")
            out(f"cmn  common_init_: failed to create context with model '{m.model_path}'")
            out(f"srv    load_model: failed to create_context with model '{m.model_path}'")
            out("srv  llama_server: exiting due to model loading error")
            msg = "\n".join(status)
            log.error("llama_server.go:1023", "llama-server terminated", "error", "exit status 1", "exit", 1)
            self._fail(r, f"llama-server process has terminated: exit status 1: {msg}")
        kv_buffer = "KV buffer:" if unparsed else "KV buffer size ="
        for i, g in enumerate(p.gpus):
            log.raw(f"llama_kv_cache: {g.library + str(i):>12} {kv_buffer} {gpu_kv / len(p.gpus) / MIB:8.2f} MiB")
        if kv_bytes - gpu_kv > 0:
            log.raw(f"llama_kv_cache: {'CPU':>12} {kv_buffer} {(kv_bytes - gpu_kv) / MIB:8.2f} MiB")
        log.info("llama_server.go:1362", f"llama-server started in {time.monotonic() - t0:0.2f} seconds")
        if unparsed:  # MemorySize's fallback: the file size as both size and size_vram, on a GPU or not
            if p.gpus:
                log.warn("llama_server.go:1067", "llama-server VRAM tracking: no per-device buffer sizes were parsed "
                         "from llama-server logs. VRAM accounting will be inaccurate. This may indicate a change in "
                         "llama-server's log format \u2014 check for 'buffer size' lines in the output.",
                         "model", m.model_path, "gpus", len(p.gpus))
            r.plan = dataclasses.replace(p, size=weights, size_vram=weights)

    @staticmethod
    def _kv_init_error(m: Model, kvt: str, fa: str) -> str:
        """Why llama.cpp's llama_init_from_model refuses this KV cache type, or "" (observed on
        b10488: a quantized V cache needs flash attention; the block size must divide the head size)."""
        if kvt not in QUANTIZED_KV_TYPES:
            return ""
        if fa == "off":
            return "quantized V cache requires flash_attn to be enabled"
        kv = m.kv()
        heads = gguf.arch_uint(kv, "attention.head_count", 1) or 1
        head_dim = gguf.arch_uint(kv, "embedding_length") // heads
        block = KV_BLOCK_SIZE[kvt]
        for part, key in (("K", "key_length"), ("V", "value_length")):
            n = gguf.arch_uint(kv, f"attention.{key}", head_dim)
            if n % block:
                return f"{part} cache type {kvt} with block size {block} does not divide n_embd_head_{part.lower()}={n}"
        return ""

    def _fail(self, r: Runner, err: str):
        self.log.info("sched.go:641", "Load failed", "model", r.model.model_path, "error", err)
        raise LoadError(err)


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

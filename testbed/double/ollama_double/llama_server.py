"""The simulated llama-server: its argv, its start-up output and its load failures.

No process is started (the "load" is a sleep of ``load_seconds`` from
config.json), but the journal gets what llm/llama_server.go logs and the
lines llama-server itself prints, so the product's log parsing sees
real-looking output.  Scheduler inherits LlamaServer, whose methods read its
env, log, system, cfg, lib_dir and gpu_used, and Placement's _available.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ollama_deploy.gocompat import gguf

from .devices import MIB, human_bytes2
from .model import Model
from .placement import file_size

if TYPE_CHECKING:  # scheduler.py imports this module; Runner is only named in annotations
    from .scheduler import Runner

VALID_KV_TYPES = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}
QUANTIZED_KV_TYPES = {"q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}
KV_BLOCK_SIZE = {t: 32 for t in QUANTIZED_KV_TYPES}  # ggml block size; f32/f16/bf16 have 1
# llm/status.go errorPrefixes: a llama-server output line holding one is kept for the load error
STATUS_ERROR_PREFIXES = ("mlx:", "MLX:", "panic:", "fatal error:", "error:", "Error:", "CUDA error", "ROCm error",
                         "cudaMalloc failed", '"ERR"', "error loading model", "GGML_ASSERT",
                         "Deepseek2 does not support K-shift", "signal arrived during cgo execution",
                         "llama_init_from_model:")
UNPARSED_BUFFERS_FLAG = "/run/ollama-double/llama-server-log-format-changed"


class LoadError(Exception):
    pass


class LlamaServer:
    """The simulated llama-server methods of Scheduler."""

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
        threads = self._threads(r)
        out(f"cmn  common_param: system_info: n_threads = {threads} (n_threads_batch = {threads}) / "
            f"{os.cpu_count()} | CPU : (simulated) |")
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
        weights = file_size(m.model_path)
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

    def _threads(self, r: Runner) -> int:
        """llama.cpp's thread count: -t (a model's num_thread), else LLAMA_ARG_THREADS from the environment
        Ollama passes on (llm/llama_server.go SetupLlamaServerCommandEnv), else one per physical core."""
        if r.opts["num_thread"] > 0:
            return r.opts["num_thread"]
        env = self.env.environ.get("LLAMA_ARG_THREADS", "")
        if env.strip().isdigit() and int(env) > 0:
            return int(env)
        # Distinct sibling lists = physical cores (the double ships only gocompat, not lib/hardware.py).
        cores = {f.read_text() for f in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings")}
        return len(cores) or os.cpu_count() or 1

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

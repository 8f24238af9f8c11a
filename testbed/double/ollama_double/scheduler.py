"""Model scheduler: runners, slots, the request queue and keep-alive.

Mirrors server/sched.go + llm/llama_server.go of Ollama v0.32.15 closely
enough that the journal (``starting llama-server`` argv, ``offloaded N/M
layers``) and /api/ps show what real Ollama would decide for the same
environment, GPUs and model.  No process is started: the "load" is a sleep of
``load_seconds`` (config.json).  Placement decisions are in placement.py and
the simulated llama-server in llama_server.py; Scheduler inherits both.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from . import options as op
from .llama_server import LlamaServer, LoadError
from .model import Model
from .placement import Placement, Plan

BUSY_MSG = "server busy, please try again.  maximum pending requests exceeded"
_NO_TIMER_NS = 10 * 365 * 24 * 3600 * 10**9  # "forever" keep-alives need no timer


class Busy(Exception):
    def __init__(self):
        super().__init__(BUSY_MSG)


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


class Scheduler(Placement, LlamaServer):
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

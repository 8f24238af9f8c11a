"""At the end of a run, one line per host that failed, with its reason, and every warning the run
gave (a dubious setting, a model passed over or not pulled). pyinfra prints an error where it
happens, which a fleet's output scrolls past, and its results table counts errors without naming
hosts.

Example (deploy code, once per run):
    failures_summarised_at_exit()
    ...
    record_failure(host.name, "smoke generate failed: HTTP 404")   # where a check fails a host
    warn(host.name, "num_ctx of m is 1000000 but m was trained on 4096 tokens")
"""
from __future__ import annotations

import atexit
import sys
import threading

from pyinfra import logger
from pyinfra.context import ctx_state

_REASONS: dict[str, str] = {}  # host name -> reason recorded by the check that failed it
_REGISTERING = threading.Lock()  # gevent-aware: pyinfra's CLI monkey-patches threading
_registered = False


_WARNINGS: list[tuple[str, str]] = []  # (host name, text), in the order given


def record_failure(host_name: str, reason: str) -> None:
    _REASONS.setdefault(host_name, reason)


def warn(host_name: str, text: str) -> None:
    """Log a warning for a host now, and repeat it in the run's summary."""
    logger.warning(f"[{host_name}] {text}")
    if (host_name, text) not in _WARNINGS:
        _WARNINGS.append((host_name, text))


def failures_summarised_at_exit() -> None:
    global _registered
    with _REGISTERING:
        if not _registered:
            _registered = True
            atexit.register(print_failures, ctx_state.get())  # the State itself: the context is gone at exit


def failure_lines(state) -> list[str]:
    """`host: reason` for each failed host, in inventory order."""
    return [f"{target.name}: {_reason(state, target)}" for target in state.inventory
            if target in state.failed_hosts]


def print_failures(state) -> None:
    if _WARNINGS:
        print("--> Warnings:", *(f"    {name}: {text}" for name, text in _WARNINGS), sep="\n", file=sys.stderr)
    lines = failure_lines(state)
    if lines:
        print("--> Failed hosts:", *(f"    {line}" for line in lines), sep="\n", file=sys.stderr)


def _reason(state, target) -> str:
    if target.name in _REASONS:
        return _REASONS[target.name]
    for op_hash in state.get_op_order():
        op_data = state.ops.get(target, {}).get(op_hash)
        meta = getattr(op_data, "operation_meta", None)
        if meta is None or not meta.is_complete() or not meta.did_error():
            continue
        name = op_data.global_arguments.get("name") or ", ".join(state.get_op_meta(op_hash).names)
        errors = [line.strip() for line in meta.stderr_lines if line.strip()]
        return f"{name} failed" + (f": {errors[-1]}" if errors else "")
    return "could not connect (its error is shown where the run connected)"

"""Proof, per host, that the deploy took effect: each setting as systemd and Ollama itself see it,
which compute Ollama found, how much of each loaded model sits on the GPU, and the unit's sandbox
score. Runs at the end of deploy.py and on its own: `pyinfra -y inventory/prod.py verify.py`.

A setting written but not seen, an OLLAMA_* variable Ollama does not read, or a GPU host running on
the CPU fails the host, naming what and the likely cause. Results: reports/verify/<host>.json.

Example (deploy code):
    verify_host()
"""
from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from ollama_deploy.lib.budget import memory_max_bytes
from ollama_deploy.lib.checked import checks_passed, unchanged_since_passed
from ollama_deploy.lib.dropins import dropins
from ollama_deploy.lib.model_operations import typed_parameters
from ollama_deploy.lib.ollama_env import READS, logged_form, side
from ollama_deploy.lib.plan import LIBRARY_DIRS, HostPlan, plan_for
from ollama_deploy.lib.remote import shell
from ollama_deploy.lib.settings import api_url
from ollama_deploy.tasks.rollback import fail_with_rollback
from ollama_deploy.tasks.smoke import generating_model, smoke_candidates

REPORT_DIR = Path("reports/verify")
SUSPEND_HINT = ("after suspend/resume the NVIDIA UVM module can lose its state: "
                "`rmmod nvidia_uvm && modprobe nvidia_uvm`, then restart ollama (seed 003)")


def parse_server_config(line: str) -> dict[str, str]:
    """The env map of Ollama's `server config` log line: map[K:V K:[a b] ...] -> {K: V}."""
    m = re.search(r'env=("(?:[^"\\]|\\.)*")', line)  # slog quotes the value as Go's strconv.Quote does
    try:
        text = json.loads(m.group(1)) if m else ""
    except ValueError:  # a \x escape JSON lacks: only that value is affected
        text = m.group(1)[1:-1] if m else ""
    if not (text.startswith("map[") and text.endswith("]")):
        return {}
    tokens, depth, current = [], 0, ""
    for ch in text[4:-1]:  # split on spaces outside [...] (list values contain spaces)
        depth += (ch == "[") - (ch == "]")
        if ch == " " and depth == 0:
            tokens.append(current)
            current = ""
        else:
            current += ch
    tokens.append(current)
    return dict(t.split(":", 1) for t in tokens if ":" in t)


def environment_items(shown: str) -> list[str]:
    r"""The VAR=value items of `systemctl show -p Environment`, which puts an item holding spaces,
    quotes or backslashes in double quotes with C escapes.

    >>> environment_items('A=1 "B=x y" "C=q\\"r"')
    ['A=1', 'B=x y', 'C=q"r']
    """
    try:
        return shlex.split(shown)
    except ValueError:  # an unbalanced quote: systemd never prints one, but do not fail on it
        return shown.split()


def _run(target, command: str) -> str:
    ok, out, _ = shell(target, command)
    return out if ok else ""


def timespan_usec(text: str) -> float | None:
    """Microseconds of a systemd timespan as systemctl show prints one ("20s", "125ms", "1min 30s")."""
    parts = re.findall(r"([0-9.]+)(us|ms|s|min|h)", text)
    units = {"us": 1, "ms": 1e3, "s": 1e6, "min": 6e7, "h": 3.6e9}
    return sum(float(n) * units[u] for n, u in parts) if parts and "".join(a + b for a, b in parts) == \
        text.replace(" ", "") else None


def _resource_check(directive: str, value: str, seen: str, ram_bytes: int) -> tuple[str, bool]:
    """(what systemctl show should say, whether it does) for a resource directive we wrote."""
    if directive == "CPUQuota":  # shown as the time per second: 2000% -> 20s, 12.5% -> 125ms
        usec, shown_usec = float(value[:-1]) / 100 * 1e6, timespan_usec(seen)
        return f"{usec / 1e6:g}s per second", shown_usec is not None and abs(shown_usec - usec) < 1
    if directive == "MemoryMax" and value.endswith("%"):  # systemd scales its own view of RAM
        share = memory_max_bytes(value, ram_bytes) or 0
        return f"about {share} ({value} of RAM)", seen.isdigit() and abs(int(seen) - share) <= ram_bytes // 100
    want = "infinity" if value == "infinity" else str(memory_max_bytes(value)) if directive == "MemoryMax" else value
    return want, seen == want


def check_settings(plan: HostPlan, environment: list[str], logged: dict[str, str], shown: dict[str, str],
                   ram_bytes: int | None = None) -> list[dict]:
    """One check per intended line, plus one per OLLAMA_* variable Ollama ignores. `ram_bytes`: the RAM
    the host's kernel reports (what systemd scales a MemoryMax percentage by), else the plan's."""
    ram_bytes = ram_bytes or plan.hardware.mem_total_mib * 2**20
    checks = []
    for lines in dropins(plan.settings).values():
        for line in lines:
            if line.directive != "Environment":
                seen = shown.get("CPUQuotaPerSecUSec" if line.directive == "CPUQuota" else line.directive, "")
                want, ok = _resource_check(line.directive, line.value, seen, ram_bytes)
                checks.append({"setting": line.directive, "want": want, "seen": seen, "ok": ok,
                               "where": "systemctl show"})
                continue
            env, raw = line.value.split("=", 1)
            in_systemd = line.value in environment
            if env in logged:
                want = logged_form(env, raw)
                if env == "OLLAMA_ORIGINS":  # printed as the whole list, Ollama's defaults included
                    # (an origin may hold a space, so look for each one between the list's separators)
                    listed = f" {logged[env].removeprefix('[').removesuffix(']')} "
                    ok = in_systemd and all(f" {origin} " in listed for origin in raw.split(","))
                else:
                    ok = in_systemd and logged[env].lower() == want.lower()
                checks.append({"setting": env, "want": want, "seen": logged[env], "ok": ok,
                               "where": "systemctl show + Ollama server config"})
            else:  # not in Ollama's map (e.g. CUDA_DEVICE_ORDER, read by the CUDA runtime)
                checks.append({"setting": env, "want": raw, "seen": raw if in_systemd else "", "ok": in_systemd,
                               "where": "systemctl show (Ollama does not log it)"})
    for item in environment:
        name = item.split("=", 1)[0]
        if not name.startswith("OLLAMA_") or not logged or name in logged:
            continue
        files = ", ".join(READS[name].files) if name in READS else ""
        if side(name) == "server":
            checks.append({"setting": name, "want": "a variable Ollama reads", "seen": item, "ok": True,
                           "where": f"read by the server but never logged ({files})"})
        elif side(name) == "client":
            checks.append({"setting": name, "want": "a variable the server reads", "seen": item, "ok": False,
                           "where": f"read only by the ollama command-line client or app ({files}), "
                                    "never by the server"})
        else:
            checks.append({"setting": name, "want": "a variable Ollama reads", "seen": item, "ok": False,
                           "where": "not in Ollama's server config: Ollama never reads it"})
    return checks


def check_compute(plan: HostPlan, journal: str, ps: dict, environment: Sequence[str] = ()) -> list[dict]:
    """GPUs Ollama reported at start, and each loaded model's share in VRAM. `environment`: what systemd
    gives Ollama, so a library set outside this tool (a hand-made drop-in) is named as the cause."""
    compute = re.findall(r'msg="inference compute" .*?library=(\S+)', journal)
    library = next((e.split("=", 1)[1] for e in reversed(environment) if e.startswith("OLLAMA_LLM_LIBRARY=")),
                   plan.settings.ollama_llm_library)
    wants_gpu = plan.wants_gpu
    checks = []
    if wants_gpu:
        # NVIDIA GPUs should run on CUDA: Vulkan on them is a fallback (CUDA discovery failed), slower.
        on_gpu = any(lib.lower() == "cuda" for lib in compute)
        cause = ""
        if not on_gpu and any(lib.lower() == "vulkan" for lib in compute):
            why = ("OLLAMA_LLM_LIBRARY=vulkan keeps it off CUDA" if plan.settings.ollama_llm_library == "vulkan"
                   else f"CUDA discovery failed ({SUSPEND_HINT})")
            cause = f"Ollama runs the NVIDIA GPU through Vulkan, not CUDA: {why}"
        elif not on_gpu:
            if library and library not in LIBRARY_DIRS.get(plan.hardware.arch, ()):
                where = "" if library == plan.settings.ollama_llm_library else ", set outside this tool's drop-ins"
                cause = (f"OLLAMA_LLM_LIBRARY={library}{where} names no GPU library directory of the release, so "
                         "Ollama skips GPU discovery and runs on the CPU")
            elif "failure during llama-server GPU discovery" in journal or plan.hardware.gpu_problem:
                driver = f"nvidia-smi: {plan.hardware.gpu_problem}; " if plan.hardware.gpu_problem else ""
                cause = f"GPU discovery failed ({driver}{SUSPEND_HINT})"
            elif library:
                cause = f"OLLAMA_LLM_LIBRARY={library} matched no usable GPU library"
            else:
                cause = "no GPU was discovered: check nvidia-smi, the driver and " + SUSPEND_HINT
        checks.append({"setting": "inference compute", "want": "CUDA", "seen": ",".join(compute) or "nothing logged",
                       "ok": on_gpu, "where": "Ollama start-up log", "cause": cause})
    # /api/ps sizes come from llama-server's buffer lines; when none parsed, Ollama reports the model
    # file's size as both size and size_vram (llm/llama_server.go MemorySize), even on a CPU.
    cpu_only = bool(compute) and all(lib.lower() == "cpu" for lib in compute)
    unparsed = "no per-device buffer sizes were parsed" in journal
    for model in ps.get("models", []):
        size, vram = model.get("size", 0), model.get("size_vram", 0)
        if cpu_only:
            where = "CPU"  # no GPU was found, whatever size_vram says
        elif unparsed and size == vram:
            where = "unknown (Ollama parsed no buffer sizes from llama-server)"
        else:
            where = "full GPU" if size and vram >= size else "partial GPU" if vram else "CPU"
        # Partial offload serves (slower) and is reported; all-CPU on a GPU host is the failure.
        checks.append({"setting": f"offload {model['name']}", "want": "full GPU" if wants_gpu else "CPU",
                       "seen": f"{where} ({vram}/{size} bytes in VRAM)",
                       "ok": where.startswith("unknown") or (where != "CPU") == wants_gpu,
                       "where": "/api/ps size_vram"})
    return checks


CLOUD_CALLS = ("model recommendations refresh failed", "model recommendations read refresh failed",
               "model show cloud cache hydration failed")  # server/model_*_cache.go: calls to ollama.com


def check_cloud(plan: HostPlan, journal: str) -> list[dict]:
    """With ollama_no_cloud, Ollama says so at start (routes.go) and never tried to reach ollama.com."""
    if not plan.settings.ollama_no_cloud:
        return []
    said = re.findall(r'msg="Ollama cloud disabled: (\w+)"', journal)
    calls = sorted({c for c in CLOUD_CALLS if f'msg="{c}"' in journal})
    seen = f"cloud disabled: {said[-1] if said else 'not logged'}" + (f"; {', '.join(calls)}" if calls else "")
    return [{"setting": "no calls to ollama.com", "want": "cloud disabled: true", "seen": seen,
             "ok": said[-1:] == ["true"] and not calls, "where": "Ollama start-up log"}]


def check_threads(plan: HostPlan, journal: str, loaded: bool) -> list[dict]:
    """With ollama_llama_threads, the thread count the last llama-server started with (its system_info
    line; Ollama does not log LLAMA_ARG_THREADS). A model with its own num_thread gets -t, which wins."""
    wanted = plan.settings.ollama_llama_threads
    seen = re.findall(r"system_info: n_threads = (\d+)", journal)
    if not wanted or not (seen or loaded):
        return []
    own = {typed_parameters(params).get("num_thread") for params in plan.settings.ollama_model_parameters.values()}
    own.discard(None)
    return [{"setting": "LLAMA_ARG_THREADS", "want": f"n_threads = {wanted}",
             "ok": bool(seen) and int(seen[-1]) in {wanted, *own},
             "seen": f"n_threads = {seen[-1]}" if seen else "no llama-server started since Ollama's start",
             "where": "llama-server's system_info line" + (" (or a model's num_thread)" if own else "")}]


def _preload(target, api: str, candidates: list[str]) -> None:
    """Load the first model that can generate (an empty prompt only loads), else the first one (an
    embedding model: an /api/embed without input only loads). No keep_alive: a request's value
    replaces the loaded model's (server/sched.go), and the host's OLLAMA_KEEP_ALIVE must stay."""
    def capabilities_on_host(model: str) -> list[str]:
        out = _run(target, f"curl -sS --max-time 30 {api}/api/show -d {shlex.quote(json.dumps({'model': model}))}")
        try:
            return json.loads(out or "{}").get("capabilities") or []
        except (ValueError, AttributeError):
            return []

    model, _ = generating_model(candidates, capabilities_on_host)
    path, body = ("generate", {"model": model, "prompt": ""}) if model else ("embed", {"model": candidates[0]})
    _run(target, f"curl -fsS --max-time 120 {api}/api/{path} -d {shlex.quote(json.dumps(body))} >/dev/null")


def _verify(state, host, plan: HostPlan, changes=(), converging: bool = False):
    # The kernel's RAM in the same round trip: what systemd scales a MemoryMax percentage by.
    show = _run(host, "systemctl show ollama.service -p Environment -p CPUQuotaPerSecUSec -p CPUWeight "
                      "-p MemoryMax -p InvocationID; awk '/^MemTotal:/ {print \"MemTotalKiB=\" $2}' /proc/meminfo")
    shown = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    environment = environment_items(shown.get("Environment", ""))
    api = api_url(plan.settings)
    candidates = smoke_candidates(plan.settings)
    # In a deploy run that finds everything as when the checks last passed, no model is loaded: the
    # offload checks cover what is loaded now (verify.py on its own always loads one).
    unchanged = converging and unchanged_since_passed(host, plan.settings, candidates)
    if candidates and not unchanged:  # the checked model loaded (and its load logged) before the journal is read
        _preload(host, api, candidates)
    # Ollama's own slog lines and llama-server's thread count: the rest of llama-server's output passes
    # through raw (generated token bytes need not be valid UTF-8).
    journal = _run(host, f"journalctl _SYSTEMD_INVOCATION_ID={shown.get('InvocationID', 'none')} -o cat --no-pager"
                         " | grep -a -e '^time=.* level=' -e 'system_info: n_threads = '")
    config_lines = [line for line in journal.splitlines() if 'msg="server config"' in line]
    logged = parse_server_config(config_lines[-1]) if config_lines else {}
    ps = json.loads(_run(host, f"curl -fsS --max-time 5 {api}/api/ps") or "{}")
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)",
                      _run(host, "systemd-analyze security ollama.service --no-pager 2>/dev/null | tail -1"))
    mem_kib = shown.get("MemTotalKiB", "")
    checks = (check_settings(plan, environment, logged, shown, int(mem_kib) * 1024 if mem_kib.isdigit() else None)
              + check_compute(plan, journal, ps, environment)
              + check_cloud(plan, journal)
              + check_threads(plan, journal, loaded=bool(candidates)))
    if not logged:
        checks.append({"setting": "server config", "want": "logged since the last start", "seen": "absent",
                       "ok": False, "where": "journal"})
    report = {"host": host.name, "profile": plan.profile, "exposure": float(score.group(1)) if score else None,
              "checks": checks, "ok": all(c["ok"] for c in checks)}
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{host.name}.json").write_text(json.dumps(report, indent=2))
    failed = [c for c in checks if not c["ok"]]
    logger.info(f"[{host.name}] verify: {len(checks) - len(failed)}/{len(checks)} checks passed, "
                f"unit exposure {report['exposure']}" + (", no model loaded (unchanged since passed)" if unchanged else ""))
    if converging and not failed:
        checks_passed(host, plan.settings, candidates)
    if failed:
        return fail_with_rollback(host, "verify failed: " + "; ".join(
            f"{c['setting']}: want {c['want']}, seen {c['seen']} ({c['where']}){' - ' + c['cause'] if c.get('cause') else ''}"
            for c in failed), any(m.did_change() for m in changes), plan.settings.ollama_api_timeout)


@deploy("Verify")
def verify_host(changes=(), converging: bool = False):
    """`changes`: the operations whose change would be rolled back if verify fails. `converging`: run by
    the deploy after the smoke (which then may skip the model load, and records a pass)."""
    # Unchecked plan: a host whose GPUs vanished must be verified (and fail with the cause), not refused.
    plan = plan_for(host, check=False)
    python.call(name="Verify: settings seen by systemd and Ollama, GPU offload, sandbox", function=_verify, plan=plan,
                changes=list(changes), converging=converging)

"""Benchmark every host of an inventory, bounded in requests and time, and write a report.

    python -m tasks.benchmark INVENTORY [--level quick|standard|comprehensive] [--checklist]
                              [--prometheus] [--out reports] [--deadline 300]

Hosts run side by side, one SSH connection each; every request is a streamed /api/generate to the
host's own loopback through that connection (Ollama's port is never exposed for this). Levels are
seed 002's; --checklist adds seed 001's steps; targets are `ollama_targets` (seed 004). The report
goes to <out>/<UTC timestamp>/ (benchmark.json, benchmark.md, latency.png). Exit 0 when the
benchmark ran (missed targets are printed), 2 when a host could not be reached.

Example:
    python -m tasks.benchmark inventory/prod.py --level standard --checklist --prometheus
"""
from __future__ import annotations

import argparse
import http.client
import json
import shlex
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from . import report
from .facts import canonical_model
from .goparse import parse_keep_alive
from .inventory_data import load_host_data
from .settings import api_url, resolve
from .smoke import generate_timed, smoke_model
from .tunnel import TunnelledHTTP, ssh_client

LEVELS = {"quick": (20, 5), "standard": (100, 10), "comprehensive": (500, 20)}  # seed 002: requests, at once
PROMPT = "Reply with one short sentence about the sea."
REQUEST_TIMEOUT = 120.0  # seconds without a byte before a request fails (a cold load can take a while)
PROM_FILE = "/var/lib/prometheus/node-exporter/ollama_deploy.prom"


class Target:
    """One host: its settings, model, SSH connection and API address on the host's loopback.

    Example:
        t = Target("gpu-1", data); t.generate()   # {"ok": True, "latency_ms": ..., "ttft_ms": ...}
    """

    def __init__(self, name: str, data: dict):
        self.name, self.settings = name, resolve(data)
        self.model = smoke_model(self.settings)
        if self.model is None:
            raise ValueError("no model selected (ollama_models / ollama_smoke_model)")
        api = urlsplit(api_url(self.settings))
        self.api_host, self.api_port = api.hostname, api.port
        self.ssh = ssh_client(data.get("ssh_hostname") or name, data.get("ssh_config_file"))
        try:
            self.api("GET", "/api/version")  # reachable means Ollama answers, not only sshd
        except Exception:
            self.ssh.close()
            raise

    def _conn(self, timeout: float) -> TunnelledHTTP:
        return TunnelledHTTP(self.ssh.get_transport(), self.api_port, timeout, self.api_host)

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        """One JSON call; raises on an HTTP error."""
        conn = self._conn(timeout)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {reply.status} {data[:200]!r}")
            return json.loads(data or b"{}")
        finally:
            conn.close()

    def generate(self, deadline: float) -> dict:
        """One timed generate as a sample; a failure is a sample too (it counts against the success rate)."""
        started = time.monotonic()
        conn = self._conn(min(REQUEST_TIMEOUT, max(5.0, deadline - started)))  # do not outlive the deadline much
        try:
            r = generate_timed(conn, self.model, PROMPT)
            return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1),
                    **{k: r[k] for k in ("ttft_ms", "tokens_per_s", "eval_count", "load_ms")}}
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
            return {"ok": False, "latency_ms": round((time.monotonic() - started) * 1000, 1),
                    "error": f"{type(e).__name__}: {e}"[:200]}
        finally:
            conn.close()

    def loaded(self) -> list[str]:
        """Models /api/ps lists, canonical names."""
        return [canonical_model(m.get("name", "")) for m in self.api("GET", "/api/ps").get("models") or []]


def run_load(target: Target, count: int, concurrency: int, deadline: float) -> dict:
    """`count` requests from `concurrency` workers; none starts after `deadline` (monotonic).
    Returns the samples, wall time and the most requests seen in flight at once.

    Example:
        run_load(t, 20, 5, time.monotonic() + 300)["peak_in_flight"]   # 5
    """
    lock, samples = threading.Lock(), []
    state = {"issued": 0, "in_flight": 0, "peak": 0}

    def worker():
        while True:
            with lock:
                if state["issued"] >= count or time.monotonic() >= deadline:
                    return
                state["issued"] += 1
                state["in_flight"] += 1
                state["peak"] = max(state["peak"], state["in_flight"])
            sample = target.generate(deadline)
            with lock:
                state["in_flight"] -= 1
                samples.append(sample)

    started = time.monotonic()
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"samples": samples, "wall_s": time.monotonic() - started, "peak_in_flight": state["peak"],
            "deadline_hit": len(samples) < count, "started": started}


def reached(run: dict, success_target: float) -> int:
    """Concurrency a run demonstrates: its peak in flight, if it met the success-rate target."""
    ok = sum(s["ok"] for s in run["samples"])
    return run["peak_in_flight"] if run["samples"] and ok / len(run["samples"]) >= success_target else 0


def checklist(target: Target, deadline: float) -> tuple[dict, int]:
    """Seed 001's steps: cold start, warm single, 4 and 10 at once, keep-alive persistence.
    Returns the steps and the concurrency the steps demonstrated."""
    steps, success_target = {}, target.settings.ollama_targets.get("success_rate", 1.0)
    if time.monotonic() >= deadline:  # the level used the time: say so rather than run past it
        return {"skipped": {"ok": False, "reason": "deadline reached before the checklist"}}, 0
    # Unload (empty prompt, keep_alive 0) and wait until /api/ps drops it: Ollama unloads asynchronously.
    target.api("POST", "/api/generate", {"model": target.model, "prompt": "", "keep_alive": 0, "stream": False})
    until = min(deadline, time.monotonic() + 15)
    while canonical_model(target.model) in target.loaded() and time.monotonic() < until:
        time.sleep(0.2)
    cold = target.generate(deadline)
    steps["cold_start"] = {"ok": cold["ok"] and cold["load_ms"] > 0, "load_ms": cold.get("load_ms"),
                           "ttft_ms": cold.get("ttft_ms"), "latency_ms": cold["latency_ms"], "error": cold.get("error")}
    warm = target.generate(deadline)
    steps["warm_single"] = {"ok": warm["ok"], "ttft_ms": warm.get("ttft_ms"),
                            "tokens_per_s": warm.get("tokens_per_s"), "latency_ms": warm["latency_ms"]}
    best = 0
    for n in (4, 10):
        run = run_load(target, n, n, deadline)
        stats = report.summarize(run["samples"], run["wall_s"])
        best = max(best, reached(run, success_target))
        steps[f"concurrent_{n}"] = {"ok": reached(run, success_target) >= n, "succeeded": stats["succeeded"],
                                    "in_flight": run["peak_in_flight"], "ttft_p95_ms": stats["ttft_ms"]["p95"],
                                    "latency_p95_ms": stats["latency_ms"]["p95"]}
    keep_s = parse_keep_alive(None if target.settings.ollama_keep_alive is None
                              else str(target.settings.ollama_keep_alive)) / 1e9
    idle = min(3.0, keep_s / 2)  # a few seconds, well inside the keep-alive: the model must still be there
    if keep_s > 0:
        time.sleep(idle)
    listed = canonical_model(target.model) in target.loaded()
    steps["keep_alive"] = {"ok": keep_s > 0 and listed, "keep_alive_s": keep_s if keep_s < 1e9 else "forever",
                           "idle_s": idle, "still_loaded": listed}
    return steps, best


def bench_host(target: Target, level: str, with_checklist: bool, deadline: float) -> dict:
    """The level's run (after one warm-up request, so it measures a warm server), then the checklist."""
    count, concurrency = LEVELS[level]
    target.generate(deadline)  # load the model: the cold start is the checklist's to measure
    run = run_load(target, count, concurrency, deadline)
    targets = target.settings.ollama_targets
    steps, best = checklist(target, deadline) if with_checklist else ({}, 0)
    entry = {"model": target.model, "stats": report.summarize(run["samples"], run["wall_s"]),
             "planned": count, "deadline_hit": run["deadline_hit"],
             "concurrency_reached": max(reached(run, targets.get("success_rate", 1.0)), best),
             "checklist": steps or None,
             "samples": {k: [s[k] for s in run["samples"] if s["ok"]] for k in ("latency_ms", "ttft_ms", "tokens_per_s")},
             "_run": run}  # dropped before writing; the fleet pools the samples and walls
    entry["targets"] = report.judge(entry["stats"], targets, entry["concurrency_reached"])
    return entry


def fleet_entry(hosts: dict, targets: list[dict]) -> dict:
    """The fleet judged on every host's samples pooled (concurrency: the least any host reached,
    so each host serves that many); `hosts_failed` names the hosts that missed each target."""
    runs = [h.pop("_run") for h in hosts.values()]
    wall = max((r["started"] + r["wall_s"] for r in runs), default=0) - min((r["started"] for r in runs), default=0)
    stats = report.summarize([s for r in runs for s in r["samples"]], wall or None)
    conc = min((h["concurrency_reached"] for h in hosts.values()), default=0)
    judged = report.judge(stats, targets[0] if targets else {}, conc)
    for name, t in judged.items():
        t["hosts_failed"] = [n for n, h in hosts.items() if not h["targets"].get(name, {}).get("pass")]
    return {"stats": stats, "concurrency_reached": conc, "targets": judged}


def write_prometheus(target: Target, entry: dict) -> None:
    """The host's figures into node_exporter's textfile directory, atomically: a temp file in the same
    directory (not *.prom, so the collector never reads it half-written) renamed over the old one."""
    directory = PROM_FILE.rsplit("/", 1)[0]
    script = (f"set -e; mkdir -p {directory}; tmp=$(mktemp {directory}/.ollama_deploy.XXXXXX); "
              f'cat > "$tmp"; chmod 644 "$tmp"; mv -f "$tmp" {PROM_FILE}')
    sudo = "" if target.ssh.get_transport().get_username() == "root" else "sudo -n "
    stdin, stdout, stderr = target.ssh.exec_command(f"{sudo}sh -c {shlex.quote(script)}", timeout=30)
    stdin.write(report.prometheus_text(entry, target.model, time.time()))
    stdin.channel.shutdown_write()
    if stdout.channel.recv_exit_status() != 0:
        raise RuntimeError(f"writing {PROM_FILE}: {stderr.read().decode(errors='replace')[:200]}")


def _connect(item: tuple[str, dict]) -> Target | str:
    name, data = item
    try:
        return Target(name, data)
    except Exception as e:  # any reason a host cannot be benchmarked is reported, the others still run
        return f"{type(e).__name__}: {e}"[:300]


def report_dir(out: str, started: datetime) -> Path:
    """<out>/<UTC timestamp>/, with a suffix if a run in the same second already took the name."""
    base = Path(out) / started.strftime("%Y%m%dT%H%M%SZ")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tasks.benchmark", description=__doc__.splitlines()[0])
    ap.add_argument("inventory")
    ap.add_argument("--level", choices=LEVELS, default="quick")
    ap.add_argument("--checklist", action="store_true", help="add seed 001's checklist per host")
    ap.add_argument("--prometheus", action="store_true", help=f"write {PROM_FILE} on each host")
    ap.add_argument("--out", default="reports")
    ap.add_argument("--deadline", type=float, default=300, help="seconds; no request starts after it")
    args = ap.parse_args(argv)
    started = datetime.now(timezone.utc)
    deadline = time.monotonic() + args.deadline
    host_data = load_host_data(args.inventory)
    with ThreadPoolExecutor(max_workers=max(1, len(host_data))) as pool:
        connected = dict(zip([n for n, _ in host_data], pool.map(_connect, host_data)))
        targets = {n: t for n, t in connected.items() if isinstance(t, Target)}
        unreachable = {n: t for n, t in connected.items() if isinstance(t, str)}
        entries = dict(zip(targets, pool.map(lambda t: bench_host(t, args.level, args.checklist, deadline),
                                             targets.values())))
    count, concurrency = LEVELS[args.level]
    fleet = fleet_entry(entries, [t.settings.ollama_targets for t in targets.values()])
    doc = {"started": started.isoformat(timespec="seconds"), "finished": datetime.now(timezone.utc)
           .isoformat(timespec="seconds"), "level": args.level, "requests": count, "concurrency": concurrency,
           "deadline_s": args.deadline, "checklist": args.checklist, "hosts": entries, "fleet": fleet,
           "unreachable": unreachable}
    out = report_dir(args.out, started)
    report.write_all(doc, out)
    for name, t in targets.items():
        if args.prometheus:
            try:
                write_prometheus(t, entries[name])
            except Exception as e:  # the report stands; say which host lacks its metrics file
                print(f"{name}: prometheus file not written: {e}", file=sys.stderr)
        t.ssh.close()
    for name, entry in {**entries, "fleet": fleet}.items():
        s, missed = entry["stats"], report.failed_targets(entry)
        print(f"{name}: {s['succeeded']}/{s['count']} ok, TTFT P95 {s['ttft_ms']['p95']} ms, "
              f"tokens/s P50 {s['tokens_per_s']['p50']}, concurrency {entry['concurrency_reached']}: "
              + (f"targets FAILED: {', '.join(missed)}" if missed else "all targets met"))
    for name, reason in unreachable.items():
        print(f"{name}: unreachable: {reason}", file=sys.stderr)
    print(out)
    return 2 if unreachable else 0


if __name__ == "__main__":
    raise SystemExit(main())

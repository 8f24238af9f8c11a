"""Benchmark Ollama on every host of an inventory, bounded in count and time; write a report.

    python -m ollama_deploy.bench.loadtest inventory/prod.py [--level quick|standard|comprehensive] [--checklist]
                             [--prometheus] [--out reports] [--deadline 300]

Requests go to each host's Ollama through its SSH connection (never to an exposed port). Levels are
seed 002's (quick: 20 requests, 5 at once; standard: 100/10; comprehensive: 500/20); --checklist adds
seed 001's (cold start, warm single request, 4 and 10 at once, keep-alive persistence). Targets
come from `ollama_targets` (seed 004). Each host is measured with the first of its models that can
generate; TTFT is the first token of either kind, so for a thinking model it is the first reasoning
token, and `answer_ms` the first answer token (see tasks/smoke.py). Exit 0 when the benchmark ran (failed targets are printed),
2 when a host could not be reached.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ollama_deploy.bench import loadreport
from ollama_deploy.control.tunnel import TunnelledHTTP, ssh_client
from ollama_deploy.lib.inventory_data import load_host_data
from ollama_deploy.lib.settings import api_url, resolve
from ollama_deploy.tasks.smoke import generate_timed, generating_model, smoke_candidates

LEVELS = {"quick": (20, 5), "standard": (100, 10), "comprehensive": (500, 20)}
PROMPT = "Reply with one short sentence about the sea."
PROM_FILE = "/var/lib/prometheus/node-exporter/ollama_deploy.prom"


class HostTarget:
    """One host's SSH transport and API address; each request opens its own tunnelled channel."""

    def __init__(self, name: str, data: dict):
        self.name, self.settings = name, resolve(data)
        self.client = ssh_client(data.get("ssh_hostname") or name, data.get("ssh_config_file"))
        api = urlsplit(api_url(self.settings))
        self.api_host, self.api_port = api.hostname, api.port
        candidates = smoke_candidates(self.settings)
        model, _ = generating_model(candidates, lambda m: self.api("POST", "/api/show", {"model": m})
                                         .get("capabilities") or [])
        if model is None:
            raise LookupError(f"none of its models can generate ({', '.join(candidates) or 'no models'}), "
                              "so there is nothing to measure")
        self.model: str = model

    def connection(self, timeout: float = 120):
        return TunnelledHTTP(self.client.get_transport(), self.api_port, timeout, self.api_host)

    def one(self) -> dict:
        started = time.monotonic()
        conn = self.connection()
        try:
            r = generate_timed(conn, self.model, PROMPT, num_predict=32)
            return {"ok": True, "latency_s": time.monotonic() - started, **r}
        except Exception as e:  # any failure counts against the success rate, with its message
            return {"ok": False, "latency_s": time.monotonic() - started, "error": str(e)[:200]}
        finally:
            conn.close()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        conn = self.connection(30)
        try:
            conn.request(method, path, body=json.dumps(body) if body else None)
            return json.loads(conn.getresponse().read() or b"{}")
        finally:
            conn.close()


def burst(target: HostTarget, count: int, concurrency: int, deadline: float) -> tuple[list[dict], float]:
    """`count` requests, `concurrency` at a time, none started after `deadline` (monotonic)."""
    started = time.monotonic()

    def worker(_):
        return target.one() if time.monotonic() < deadline else None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = [r for r in pool.map(worker, range(count)) if r is not None]
    return results, time.monotonic() - started


def checklist(target: HostTarget, deadline: float) -> dict:
    """Seed 001's checklist, each step as a short figure."""
    target.api("POST", "/api/generate", {"model": target.model, "prompt": "", "keep_alive": 0})  # unload
    cold = target.one()
    warm = target.one()
    steps: dict[str, Any] = {"cold start": f"load {cold.get('load_ms')} ms, TTFT {cold.get('ttft_ms')} ms",
             "warm single": f"TTFT {warm.get('ttft_ms')} ms, {warm.get('tokens_per_s')} tok/s"}
    for n in (4, 10):
        results, _ = burst(target, n, n, deadline)
        served = sum(r["ok"] for r in results)
        steps[f"{n} concurrent"] = f"{served}/{n} ok, " \
                                   f"TTFT p95 {loadreport.percentile([r['ttft_ms'] for r in results if r['ok']], 95)} ms"
        if served == n:
            steps["served concurrently"] = n
    time.sleep(2)  # idle shorter than any sensible keep-alive
    loaded = [m["name"] for m in target.api("GET", "/api/ps").get("models", [])]
    steps["keep-alive persistence"] = "model still loaded after 2 s idle" if any(
        m.startswith(target.model.split(":")[0]) for m in loaded) else "FAIL: model unloaded after 2 s idle"
    return steps


def write_prometheus(target: HostTarget, host_report: dict) -> None:
    text = loadreport.prometheus_text(host_report, target.model, time.time())
    directory = PROM_FILE.rsplit("/", 1)[0]
    cmd = (f"mkdir -p {directory} && cat > {PROM_FILE}.tmp && chmod 644 {PROM_FILE}.tmp && "
           f"mv {PROM_FILE}.tmp {PROM_FILE}")  # atomic for the collector, which may read any time
    stdin, stdout, _ = target.client.exec_command(f"sh -c {shlex.quote(cmd)}")
    stdin.write(text)
    stdin.channel.shutdown_write()
    if stdout.channel.recv_exit_status() != 0:
        raise RuntimeError(f"{target.name}: could not write {PROM_FILE}")


def bench_host(target: HostTarget, level: str, with_checklist: bool, deadline: float) -> tuple[dict, list[dict]]:
    count, concurrency = LEVELS[level]
    target.one()  # load the model first: the level measures a warm server (the checklist measures cold)
    results, wall = burst(target, count, concurrency, deadline)
    stats = loadreport.summarize(results, wall)
    steps = checklist(target, deadline) if with_checklist else {}
    served = max(concurrency, steps.pop("served concurrently", 0)) if stats["success_rate"] == 1 else 0
    report = {"model": target.model, "concurrency": concurrency, "stats": stats,
              "targets": loadreport.judge(stats, target.settings.ollama_targets, served),
              "samples": {"latency_ms": [r["latency_s"] * 1000 for r in results if r["ok"]],
                          "tokens_per_s": [r["tokens_per_s"] for r in results if r["ok"]]}}
    if steps:
        report["checklist"] = steps
    return report, results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ollama_deploy.bench.loadtest", description=__doc__.splitlines()[0])
    ap.add_argument("inventory")
    ap.add_argument("--level", choices=LEVELS, default="quick")
    ap.add_argument("--checklist", action="store_true")
    ap.add_argument("--prometheus", action="store_true")
    ap.add_argument("--out", default="reports")
    ap.add_argument("--deadline", type=float, default=300, help="seconds; no request starts after it")
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.deadline
    started = datetime.now(UTC)
    targets, unreachable = [], []
    for name, data in load_host_data(args.inventory):
        try:
            targets.append(HostTarget(name, data))
        except Exception as e:  # unreachable, unknown host key, nothing to measure: reported, the others run
            unreachable.append(f"{name}: {e}")
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        runs = list(pool.map(lambda t: bench_host(t, args.level, args.checklist, deadline), targets))
    hosts = {t.name: r for t, (r, _) in zip(targets, runs)}
    wall = max((h["stats"]["requests"] / h["stats"]["requests_per_s"] for h in hosts.values()
                if h["stats"]["requests_per_s"]), default=None)  # hosts ran side by side
    fleet_stats = loadreport.summarize([r for _, results in runs for r in results], wall)
    report = {"started": started.isoformat(), "level": args.level, "unreachable": unreachable,
              "hosts": hosts, "fleet": {"stats": fleet_stats}}
    out = Path(args.out) / started.strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    loadreport.write_json(report, out)
    loadreport.write_markdown(report, out)
    loadreport.write_plot({n: h["samples"] for n, h in hosts.items()}, out)
    if args.prometheus:
        for t in targets:
            write_prometheus(t, hosts[t.name])
    for name, h in hosts.items():
        failed = [k for k, v in h["targets"].items() if not v["pass"]]
        print(f"{name}: {h['stats']['succeeded']}/{h['stats']['requests']} ok, TTFT p95 "
              f"{h['stats']['ttft_ms']['p95']} ms, {h['stats']['tokens_per_s']['p50']} tok/s"
              + (f"; targets missed: {', '.join(failed)}" if failed else "; all targets met"))
    for line in unreachable:
        print(f"unreachable: {line}", file=sys.stderr)
    print(f"report: {out}")
    return 2 if unreachable else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tune one host to its targets: a bounded sweep of parallel slots x context x KV cache type (and
num_thread on CPU hosts), each point applied by the deploy itself and measured with the load test.

    python -m ollama_deploy.bench.tune inventory/prod.py --host H [--model M] [--level quick] [--deadline 900]
                         [--parallel 1,2,4] [--context 2048,4096] [--kv f16,q8_0] [--threads 4,8]

Every point goes through the deploy (`--data` on the command line, so its validation refuses what
cannot load: a quantized cache with a head size its block does not divide, or without flash
attention) and is measured with the load test's levels, through the SSH tunnel. The best point is
the one meeting `ollama_targets` with the most requests per second; when none does, the one
missing them least, and the output says which target it misses by how much. It is written to
tuned/<host>.json, which the deploy reads on its next run (under the host's own inventory data
and --data, over its groups'); the inventory is never edited. The host gets the deploy's own
configuration back at the end, and when interrupted. Output: tuned/<host>.md (every point),
tuned/<host>-sweep.json and tuned/<host>.png (throughput and TTFT p95 against each swept setting,
the targets drawn in). Exit 0 when a point meets the targets, 1 when none does, 2 on a failure.
"""
from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ollama_deploy.bench import loadreport
from ollama_deploy.bench.loadtest import LEVELS, HostTarget, burst
from ollama_deploy.lib.inventory_data import load_host_data
from ollama_deploy.lib.plan import TUNED_DIR

KEYS = ("ollama_num_parallel", "ollama_context_length", "ollama_kv_cache_type")


def points(args, model: str, threads: list[int]) -> list[dict]:
    """The sweep, smallest first, at most args.max_points."""
    grid: list[dict] = []
    for parallel, context, kv, thread in itertools.product(args.parallel, args.context, args.kv, threads or [0]):
        point = {"ollama_num_parallel": parallel, "ollama_context_length": context, "ollama_kv_cache_type": kv}
        if kv != "f16":
            point["ollama_flash_attention"] = True  # a quantized V cache needs it
        if thread:
            point["ollama_model_parameters"] = {model: {"num_thread": thread}}
        grid.append(point)
    return grid[:args.max_points]


def _deploy(inventory: str, host: str, point: dict) -> subprocess.CompletedProcess:
    data = [arg for k, v in point.items() for arg in ("--data", f"{k}={json.dumps(v)}")]
    return subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(Path(inventory).resolve()), "deploy.py",
                           "--limit", host, *data],
                          capture_output=True, text=True, timeout=600)  # from the deploy's own directory


def _refusal(run: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in run.stderr.splitlines() if ln.strip().startswith(("host ", "    "))]
    return (lines or run.stderr.strip().splitlines() or ["deploy failed"])[-1][:300]


def measure(inventory: str, host: str, data: dict, point: dict, level: str, deadline: float) -> dict:
    """Apply one point with the deploy, then run the load test level against it (`data`: the host's)."""
    run = _deploy(inventory, host, point)
    if run.returncode != 0:
        return {"point": point, "refused": _refusal(run)}
    target = HostTarget(host, {**data, **point})
    count, concurrency = LEVELS[level]
    # At least as many at once as the concurrent-users target, so a point can meet it.
    concurrency = max(concurrency, int(target.settings.ollama_targets.get("concurrent_users", 0)))
    target.one()  # warm: the level measures a loaded model
    results, wall = burst(target, max(count, 2 * concurrency), concurrency, deadline)
    stats = loadreport.summarize(results, wall)
    served = concurrency if stats["success_rate"] == 1 else 0
    return {"point": point, "stats": stats, "model": target.model,
            "targets": loadreport.judge(stats, target.settings.ollama_targets, served)}


def shortfall(row: dict) -> float:
    """How far a point misses its targets: the sum of each missed target's relative gap (0 when met)."""
    gap = 0.0
    for t in row["targets"].values():
        if not t["pass"] and t["seen"] is not None and t["target"]:
            gap += abs(t["seen"] - t["target"]) / t["target"]
        elif not t["pass"]:
            gap += 1.0
    return gap


def best(rows: list[dict]) -> dict | None:
    measured = [r for r in rows if "stats" in r and r["stats"]["succeeded"]]
    if not measured:
        return None
    return min(measured, key=lambda r: (shortfall(r), -(r["stats"]["requests_per_s"] or 0)))


def write_outputs(host: str, rows: list[dict], chosen: dict | None, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{host}-sweep.json").write_text(json.dumps({"schema": "ollama-deploy/tune/1", "host": host,
                                                        "points": rows, "chosen": chosen}, indent=2, default=str))
    lines = [f"# Tuning {host}", "", "| parallel | context | KV | num_thread | req/s | TTFT p95 ms | tok/s p50 | "
             "targets |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["point"]
        per_model: dict[str, Any] = next(iter(p.get("ollama_model_parameters", {}).values()), {})
        thread = per_model.get("num_thread", "—")
        head = f"| {p['ollama_num_parallel']} | {p['ollama_context_length']} | {p['ollama_kv_cache_type']} | {thread} |"
        if "refused" in r:
            lines.append(f"{head} — | — | — | refused: {r['refused'].replace('|', '/')} |")
            continue
        s = r["stats"]
        met = "all met" if shortfall(r) == 0 else "missed: " + ", ".join(k for k, t in r["targets"].items()
                                                                         if not t["pass"])
        lines.append(f"{head} {loadreport._fmt(s['requests_per_s'])} | {loadreport._fmt(s['ttft_ms']['p95'])} | "
                     f"{loadreport._fmt(s['tokens_per_s']['p50'])} | {met}{' **(chosen)**' if r is chosen else ''} |")
    (out / f"{host}.md").write_text("\n".join(lines) + "\n")
    _plot(host, [r for r in rows if "stats" in r], out)


def _plot(host: str, rows: list[dict], out: Path) -> None:
    plt = loadreport.pyplot()
    if plt is None:
        return

    fig, axes = plt.subplots(2, len(KEYS), figsize=(4 * len(KEYS), 6), squeeze=False)
    targets = rows[0]["targets"] if rows else {}
    for col, key in enumerate(KEYS):
        xs = [str(r["point"][key]) for r in rows]
        axes[0][col].scatter(xs, [r["stats"]["requests_per_s"] or 0 for r in rows])
        axes[0][col].set_title(f"req/s by {key.removeprefix('ollama_')}")
        axes[1][col].scatter(xs, [r["stats"]["ttft_ms"]["p95"] or 0 for r in rows], color="tab:orange")
        axes[1][col].set_title(f"TTFT p95 (ms) by {key.removeprefix('ollama_')}")
        if "ttft_ms" in targets:
            axes[1][col].axhline(targets["ttft_ms"]["target"], linestyle="--", color="red", label="target")
            axes[1][col].legend()
    fig.suptitle(f"{host}: one dot per measured point")
    fig.tight_layout()
    fig.savefig(out / f"{host}.png", dpi=90)
    plt.close(fig)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM restores the host like Ctrl-C does


def main(argv=None) -> int:
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    ap = argparse.ArgumentParser(prog="python -m ollama_deploy.bench.tune", description=__doc__.splitlines()[0])
    ap.add_argument("inventory")
    ap.add_argument("--host", required=True)
    ap.add_argument("--model", help="the model to tune for (default: the host's smoke model)")
    ap.add_argument("--level", choices=LEVELS, default="quick")
    ap.add_argument("--parallel", type=ints, default=[1, 2, 4])
    ap.add_argument("--context", type=ints, default=[2048, 4096, 8192])
    ap.add_argument("--kv", type=lambda s: s.split(","), default=["f16", "q8_0"])
    ap.add_argument("--threads", type=ints, default=None, help="num_thread values (CPU hosts)")
    ap.add_argument("--max-points", type=int, default=24)
    ap.add_argument("--deadline", type=float, default=900, help="seconds; no point starts after it")
    ap.add_argument("--out", default=str(TUNED_DIR), help="where tuned/<host>.json goes (the deploy reads "
                    "OLLAMA_DEPLOY_TUNED_DIR, default tuned/)")
    args = ap.parse_args(argv)
    hosts = dict(load_host_data(args.inventory))
    if args.host not in hosts:
        print(f"tune: host {args.host} is not in {args.inventory}", file=sys.stderr)
        return 2
    model = args.model or (hosts[args.host].get("ollama_models") or [None])[0]
    deadline = time.monotonic() + args.deadline
    rows: list[dict] = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for point in points(args, model, args.threads or []):
            if time.monotonic() > deadline:
                break
            rows.append(measure(args.inventory, args.host, hosts[args.host], point, args.level, deadline))
            print(f"tune {args.host}: {point} -> " + (rows[-1].get("refused") or
                  f"{rows[-1]['stats']['requests_per_s']} req/s"), file=sys.stderr)
    except KeyboardInterrupt:
        print(f"tune {args.host}: interrupted; restoring the deploy's configuration", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        restored = _deploy(args.inventory, args.host, {})
    if restored.returncode != 0:
        print(f"tune {args.host}: restoring failed: {_refusal(restored)}", file=sys.stderr)
        return 2
    chosen = best(rows)
    out = Path(args.out)
    write_outputs(args.host, rows, chosen, out)
    if chosen is None:
        print(f"tune {args.host}: no point could be measured; see {out / (args.host + '.md')}", file=sys.stderr)
        return 2
    settings = {k: v for k, v in chosen["point"].items()}
    (out / f"{args.host}.json").write_text(json.dumps({"host": args.host, "model": chosen["model"],
                                                       "settings": settings}, indent=2) + "\n")
    missed = {k: t for k, t in chosen["targets"].items() if not t["pass"]}
    print(f"tune {args.host}: chose {settings} ({chosen['stats']['requests_per_s']:.2f} req/s); written to "
          f"{out / (args.host + '.json')}, applied by the next deploy" + "".join(
              f"; misses {k}: {t['seen']} against {t['rule']} {t['target']}" for k, t in missed.items()))
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Figures from a load test, judged against targets, written for people (Markdown, PNG) and
machines (JSON with a stable schema, Prometheus text for node_exporter's textfile collector).

Example:
    stats = summarize(results)                      # results: [{"ok", "latency_s", "ttft_ms", "tokens_per_s"}]
    judge(stats, {"ttft_ms": 300, "tokens_per_s": 30, "concurrent_users": 10, "success_rate": 1.0}, 10)
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

SCHEMA = "ollama-deploy/benchmark/1"


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it.
    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 95)
    (2, 4)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(results: list[dict], wall_s: float | None = None) -> dict:
    ok = [r for r in results if r["ok"]]
    latency = [r["latency_s"] * 1000 for r in ok]
    ttft = [r["ttft_ms"] for r in ok]
    tps = [r["tokens_per_s"] for r in ok]
    # Thinking models: TTFT counts the first reasoning token; the answer's first token comes later.
    answer = [r["answer_ms"] for r in ok if r.get("answer_ms") is not None]
    return {
        "requests": len(results), "succeeded": len(ok),
        "success_rate": len(ok) / len(results) if results else 0.0,
        "latency_ms": {f"p{p}": percentile(latency, p) for p in (50, 95, 99)},
        "ttft_ms": {f"p{p}": percentile(ttft, p) for p in (50, 95, 99)},
        "answer_ms": {f"p{p}": percentile(answer, p) for p in (50, 95)},
        "thinking_requests": sum(bool(r.get("thinking")) for r in ok),
        "tokens_per_s": {"mean": sum(tps) / len(tps) if tps else None, "p50": percentile(tps, 50)},
        "requests_per_s": len(ok) / wall_s if wall_s else None,
        "errors": sorted({r["error"] for r in results if not r["ok"]})[:5],
    }


def judge(stats: dict, targets: dict, concurrency: int) -> dict:
    """Pass/fail per target (seed 004): TTFT p95, tokens/s p50, concurrency served, success rate."""
    def at_most(v, t):
        return v is not None and v <= t

    def at_least(v, t):
        return v is not None and v >= t

    return {
        "ttft_ms": {"target": targets["ttft_ms"], "rule": "≤", "seen": stats["ttft_ms"]["p95"],
                    "pass": at_most(stats["ttft_ms"]["p95"], targets["ttft_ms"])},
        "tokens_per_s": {"target": targets["tokens_per_s"], "rule": "≥", "seen": stats["tokens_per_s"]["p50"],
                         "pass": at_least(stats["tokens_per_s"]["p50"], targets["tokens_per_s"])},
        "concurrent_users": {"target": targets["concurrent_users"], "rule": "≥", "seen": concurrency,
                             "pass": at_least(concurrency, targets["concurrent_users"])
                             and stats["success_rate"] >= targets["success_rate"]},
        "success_rate": {"target": targets["success_rate"], "rule": "≥", "seen": stats["success_rate"],
                         "pass": at_least(stats["success_rate"], targets["success_rate"])},
    }


def write_json(report: dict, out: Path) -> Path:
    path = out / "benchmark.json"
    path.write_text(json.dumps({"schema": SCHEMA, **report}, indent=2, default=str))
    return path


def _fmt(v, unit="") -> str:
    return "—" if v is None else f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def write_markdown(report: dict, out: Path) -> Path:
    lines = [f"# Ollama benchmark: {report['level']} ({report['started']})", "",
             "| host | requests | success | latency p50/p95/p99 ms | TTFT p50/p95/p99 ms | tok/s p50 | req/s |",
             "|---|---|---|---|---|---|---|"]
    for name, h in {**report["hosts"], "fleet": report["fleet"]}.items():
        s = h["stats"]
        lines.append(f"| {name} | {s['requests']} | {s['success_rate']:.0%} | "
                     f"{'/'.join(_fmt(s['latency_ms'][k]) for k in ('p50', 'p95', 'p99'))} | "
                     f"{'/'.join(_fmt(s['ttft_ms'][k]) for k in ('p50', 'p95', 'p99'))} | "
                     f"{_fmt(s['tokens_per_s']['p50'])} | {_fmt(s['requests_per_s'])} |")
    lines += ["", "## Targets (seed 004)", "", "| host | TTFT p95 | tokens/s | concurrent users | success |",
              "|---|---|---|---|---|"]
    for name, h in report["hosts"].items():
        cells = [f"{_fmt(t['seen'])} ({t['rule']} {t['target']}) {'pass' if t['pass'] else 'FAIL'}"
                 for t in h["targets"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    checklists = {n: h["checklist"] for n, h in report["hosts"].items() if h.get("checklist")}
    if checklists:
        lines += ["", "## Checklist (seed 001)", ""]
        for name, steps in checklists.items():
            lines.append(f"- **{name}**: " + "; ".join(f"{k}: {v}" for k, v in steps.items()))
    path = out / "benchmark.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def pyplot() -> Any:
    """matplotlib's pyplot for files (no display on servers and CI), or None with a note when the
    optional plotting dependency is not installed: the figures and tables do not need it."""
    try:
        import matplotlib
    except ImportError:
        print("plots skipped: pip install 'ollama-deploy[plots]' for them", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_plot(samples: dict[str, dict[str, list[float]]], out: Path) -> Path | None:
    """Latency distribution (box plot) and tokens/s per host, one PNG (None without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return None

    names = list(samples)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.boxplot([samples[n]["latency_ms"] or [0] for n in names])
    left.set_xticks(range(1, len(names) + 1), names, rotation=15)
    left.set_title("request latency (ms)")
    right.bar(names, [(sum(v) / len(v)) if (v := samples[n]["tokens_per_s"]) else 0 for n in names])
    right.set_title("tokens/s (mean)")
    right.tick_params(axis="x", rotation=15)
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def prometheus_text(host_report: dict, model: str, timestamp: float) -> str:
    """node_exporter textfile-collector format for one host."""
    s, label = host_report["stats"], f'model="{model}"'
    out = ["# HELP ollama_deploy_ttft_seconds Time to first token in the last benchmark.",
           "# TYPE ollama_deploy_ttft_seconds gauge"]
    out += [f'ollama_deploy_ttft_seconds{{quantile="0.{k[1:]}",{label}}} {v / 1000:.6f}'
            for k, v in s["ttft_ms"].items() if v is not None]
    out += ["# HELP ollama_deploy_tokens_per_second Median generation speed in the last benchmark.",
            "# TYPE ollama_deploy_tokens_per_second gauge",
            f"ollama_deploy_tokens_per_second{{{label}}} {s['tokens_per_s']['p50'] or 0}",
            "# HELP ollama_deploy_requests_total Requests sent in the last benchmark.",
            "# TYPE ollama_deploy_requests_total gauge",
            f"ollama_deploy_requests_total{{{label}}} {s['requests']}",
            "# HELP ollama_deploy_success_ratio Share of requests that succeeded.",
            "# TYPE ollama_deploy_success_ratio gauge",
            f"ollama_deploy_success_ratio{{{label}}} {s['success_rate']}",
            "# HELP ollama_deploy_benchmark_timestamp_seconds When the last benchmark ran.",
            "# TYPE ollama_deploy_benchmark_timestamp_seconds gauge",
            f"ollama_deploy_benchmark_timestamp_seconds {timestamp:.0f}"]
    return "\n".join(out) + "\n"

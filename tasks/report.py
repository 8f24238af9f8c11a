"""Benchmark figures and the files people and machines read: statistics (nearest-rank percentiles),
pass/fail against `ollama_targets` (seed 004), benchmark.json, benchmark.md, latency.png and the
Prometheus text node_exporter's textfile collector reads.

Example:
    stats = summarize([{"ok": True, "latency_ms": 900.0, "ttft_ms": 120.0, "tokens_per_s": 41.0}], wall_s=0.9)
    judge(stats, {"ttft_ms": 300, "tokens_per_s": 30, "concurrent_users": 10, "success_rate": 1.0}, 10)
    write_all(report, Path("reports/20250101T120000Z"))   # benchmark.json, benchmark.md, latency.png
"""
from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA = "ollama-deploy/benchmark/1"
QUANTILES = (50, 95, 99)
MAX_ERRORS = 5  # the first few distinct messages: enough to diagnose, short enough to read


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the value at rank ceil(p/100 * n) of the sorted values (rank 1 at
    least), so the answer is always an observed value; None when there are no values.

    >>> percentile([15, 20, 35, 40, 50], 30), percentile([15, 20, 35, 40, 50], 100), percentile([], 50)
    (20, 50, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def summarize(samples: list[dict], wall_s: float | None) -> dict:
    """Statistics of one run. A sample is {"ok", "latency_ms"} plus "ttft_ms" and "tokens_per_s" when
    ok, or "error" when not. Latency and TTFT percentiles cover successful requests only (a failure's
    time says nothing about serving speed; it counts against the success rate instead).

    >>> summarize([{"ok": False, "latency_ms": 5.0, "error": "HTTP 503"}], 1.0)["success_rate"]
    0.0
    """
    ok = [s for s in samples if s["ok"]]
    tps = [s["tokens_per_s"] for s in ok]
    errors = list(dict.fromkeys(s.get("error", "?") for s in samples if not s["ok"]))
    return {
        "count": len(samples), "succeeded": len(ok), "failed": len(samples) - len(ok),
        "success_rate": round(len(ok) / len(samples), 4) if samples else 0.0,
        "latency_ms": {f"p{q}": percentile([s["latency_ms"] for s in ok], q) for q in QUANTILES},
        "ttft_ms": {f"p{q}": percentile([s["ttft_ms"] for s in ok], q) for q in QUANTILES},
        "tokens_per_s": {"mean": round(sum(tps) / len(tps), 2) if tps else None, "p50": percentile(tps, 50)},
        "requests_per_s": round(len(samples) / wall_s, 3) if wall_s else None,
        "wall_s": round(wall_s, 3) if wall_s is not None else None,
        "errors": errors[:MAX_ERRORS],
    }


def judge(stats: dict, targets: dict, concurrency_reached: int) -> dict:
    """Pass/fail per seed-004 target: TTFT P95 ≤ ttft_ms, tokens/s P50 ≥ tokens_per_s, concurrency
    reached ≥ concurrent_users, success rate ≥ success_rate. A missing figure fails.

    >>> judge(summarize([], None), {"success_rate": 1.0}, 0)["success_rate"]["pass"]
    False
    """
    seen = {"ttft_ms": ("<=", stats["ttft_ms"]["p95"]), "tokens_per_s": (">=", stats["tokens_per_s"]["p50"]),
            "concurrent_users": (">=", concurrency_reached), "success_rate": (">=", stats["success_rate"])}
    out = {}
    for name, target in targets.items():
        rule, value = seen.get(name, ("?", None))  # a target this tool does not know fails, visibly
        ok = value is not None and (value <= target if rule == "<=" else value >= target if rule == ">=" else False)
        out[name] = {"target": target, "rule": rule, "value": value, "pass": bool(ok)}
    return out


def failed_targets(entry: dict) -> list[str]:
    """Names of the targets a host (or the fleet) missed."""
    return [name for name, t in entry.get("targets", {}).items() if not t["pass"]]


def write_all(report: dict, out: Path) -> list[Path]:
    """The three report files in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps({"schema": SCHEMA, **report}, indent=2) + "\n")
    (out / "benchmark.md").write_text(markdown(report))
    write_plot(report, out / "latency.png")
    return [out / "benchmark.json", out / "benchmark.md", out / "latency.png"]


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "—"
    return f"{v:,.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _stats_rows(s: dict) -> list[tuple[str, str]]:
    q = "/".join(f"P{n}" for n in QUANTILES)
    return [("requests (ok/total)", f"{s['succeeded']}/{s['count']}"), ("success rate", f"{s['success_rate']:.1%}"),
            (f"latency {q} (ms)", " / ".join(_fmt(s["latency_ms"][f"p{n}"]) for n in QUANTILES)),
            (f"TTFT {q} (ms)", " / ".join(_fmt(s["ttft_ms"][f"p{n}"]) for n in QUANTILES)),
            ("tokens/s mean / P50", f"{_fmt(s['tokens_per_s']['mean'])} / {_fmt(s['tokens_per_s']['p50'])}"),
            ("requests/s", _fmt(s["requests_per_s"])), ("wall time (s)", _fmt(s["wall_s"]))]


_RULES = {"<=": "≤", ">=": "≥"}


def _section(title: str, entry: dict) -> list[str]:
    """One table: the statistics, then each target with its rule and pass/FAIL."""
    lines = [f"## {title}", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _stats_rows(entry["stats"])]
    if entry.get("deadline_hit"):  # fewer requests than the level asks: say why, next to the figures
        lines.append(f"| stopped early | deadline reached after {entry['stats']['count']} of {entry['planned']} |")
    lines += [f"| concurrency reached | {entry['concurrency_reached']} |", "",
              "| target | seen | rule | result |", "|---|---|---|---|"]
    for n, t in entry["targets"].items():
        result = "pass" if t["pass"] else "**FAIL**"
        if t.get("hosts_failed"):  # the fleet: a pooled figure can pass while a host misses
            result += f" (FAIL on {', '.join(t['hosts_failed'])})"
        lines.append(f"| {n} | {_fmt(t['value'])} | {_RULES.get(t['rule'], t['rule'])} {t['target']} | {result} |")
    if entry["stats"]["errors"]:
        lines += ["", "Errors: " + "; ".join(f"`{e}`" for e in entry["stats"]["errors"])]
    return lines + [""]


def _checklist(steps: dict) -> list[str]:
    lines = ["Checklist (seed 001):", "", "| step | result | figures |", "|---|---|---|"]
    for name, step in steps.items():
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in step.items() if k != "ok" and v is not None)
        lines.append(f"| {name.replace('_', ' ')} | {'ok' if step['ok'] else '**FAIL**'} | {figures} |")
    return lines + [""]


def markdown(report: dict) -> str:
    """The human report: an overview, then one table per host and one for the fleet."""
    lines = [f"# Ollama benchmark — level {report['level']}", "",
             f"Started {report['started']}; {report['requests']} requests per host, {report['concurrency']} at once, "
             "streamed /api/generate. Percentiles are nearest-rank over successful requests.", "",
             "| host | model | success | TTFT P95 ms | tokens/s P50 | targets |", "|---|---|---|---|---|---|"]
    for name, h in {**report["hosts"], "fleet": report["fleet"]}.items():
        s, missed = h["stats"], failed_targets(h)
        lines.append(f"| {name} | {h.get('model', '—')} | {s['success_rate']:.1%} | {_fmt(s['ttft_ms']['p95'])} | "
                     f"{_fmt(s['tokens_per_s']['p50'])} | {'pass' if not missed else 'FAIL: ' + ', '.join(missed)} |")
    lines.append("")
    for name, reason in report.get("unreachable", {}).items():
        lines += [f"- **{name}: unreachable** — {reason}", ""]
    for name, h in report["hosts"].items():
        lines += _section(f"{name} ({h['model']})", h) + (_checklist(h["checklist"]) if h.get("checklist") else [])
    lines += _section(f"fleet ({len(report['hosts'])} hosts)", report["fleet"])
    return "\n".join(lines)


def write_plot(report: dict, path: Path) -> Path:
    """Latency distribution (box plot) and tokens/s (box plot) per host, side by side."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    names = list(report["hosts"]) or ["(no host)"]
    samples = [report["hosts"].get(n, {}).get("samples", {}) for n in names]
    fig, (lat, tps) = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, title in ((lat, "latency_ms", "request latency (ms)"), (tps, "tokens_per_s", "tokens/s")):
        ax.boxplot([s.get(key) or [0] for s in samples], showmeans=True)  # [0]: an empty host still gets a slot
        ax.set_xticks(range(1, len(names) + 1), names, rotation=15)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    goal = report["fleet"].get("targets", {}).get("tokens_per_s", {}).get("target")
    if goal is not None:  # the line a host's box must sit above
        tps.axhline(goal, color="tab:red", linestyle="--", label=f"target {goal} tokens/s")
        tps.legend(loc="best")
    fig.suptitle(f"Ollama benchmark, level {report['level']} ({report['started']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label(value: str) -> str:
    """A Prometheus label value, escaped as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(entry: dict, model: str, timestamp: float) -> str:
    """node_exporter textfile-collector text for one host's benchmark. Gauges: each file replaces
    the last run's figures (requests_total is the last run's count, not a lifetime counter).

    >>> print(prometheus_text({"stats": summarize([], None)}, "m", 0).splitlines()[0])
    # HELP ollama_deploy_ttft_seconds Time to first token in the last benchmark, by quantile.
    """
    s, m = entry["stats"], f'model="{_label(model)}"'
    metrics = [
        ("ttft_seconds", "Time to first token in the last benchmark, by quantile.",
         [(f'quantile="{q / 100}",{m}', s["ttft_ms"][f"p{q}"] and s["ttft_ms"][f"p{q}"] / 1000) for q in QUANTILES]),
        ("request_duration_seconds", "Request wall time in the last benchmark, by quantile.",
         [(f'quantile="{q / 100}",{m}', s["latency_ms"][f"p{q}"] and s["latency_ms"][f"p{q}"] / 1000)
          for q in QUANTILES]),
        ("tokens_per_second", "Generation speed in the last benchmark (P50 and mean).",
         [(f'stat="p50",{m}', s["tokens_per_s"]["p50"]), (f'stat="mean",{m}', s["tokens_per_s"]["mean"])]),
        ("requests_total", "Requests sent in the last benchmark.", [(m, s["count"])]),
        ("success_ratio", "Share of the last benchmark's requests that succeeded.", [(m, s["success_rate"])]),
        ("target_pass", "1 when the last benchmark met the target (seed 004), else 0.",
         [(f'target="{_label(n)}",{m}', int(t["pass"])) for n, t in entry.get("targets", {}).items()]),
        ("benchmark_timestamp_seconds", "When the last benchmark ran (Unix time).", [(m, round(timestamp, 3))]),
    ]
    lines = []
    for name, help_text, samples in metrics:
        lines += [f"# HELP ollama_deploy_{name} {help_text}", f"# TYPE ollama_deploy_{name} gauge"]
        # No figure (no successful request) is NaN: the series stays, and alerts can see it.
        lines += [f"ollama_deploy_{name}{{{labels}}} {'NaN' if v is None else v}" for labels, v in samples]
    return "\n".join(lines) + "\n"

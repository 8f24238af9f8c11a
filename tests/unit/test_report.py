"""The benchmark report: nearest-rank percentiles, targets, and the JSON/Markdown/PNG/Prometheus files."""
import json
import math
import re
import struct

import pytest

from tasks import report

TARGETS = {"ttft_ms": 300, "tokens_per_s": 30, "concurrent_users": 10, "success_rate": 1.0}


def samples(n=10, fail=0):
    """n successes with latency 100·i ms, TTFT 10·i ms, 40+i tokens/s; then `fail` failures."""
    ok = [{"ok": True, "latency_ms": 100.0 * i, "ttft_ms": 10.0 * i, "tokens_per_s": 40.0 + i} for i in range(1, n + 1)]
    return ok + [{"ok": False, "latency_ms": 3.0, "error": "HTTP 503: server busy"}] * fail


# Nearest rank: rank = ceil(p/100 · n), the value at that 1-based position of the sorted list.
@pytest.mark.parametrize("values, p, expected", [
    ([15, 20, 35, 40, 50], 5, 15),     # ceil(0.25) = 1
    ([15, 20, 35, 40, 50], 30, 20),    # ceil(1.5) = 2
    ([15, 20, 35, 40, 50], 40, 20),    # ceil(2.0) = 2
    ([15, 20, 35, 40, 50], 50, 35),    # ceil(2.5) = 3
    ([15, 20, 35, 40, 50], 100, 50),   # ceil(5) = 5
    ([50, 15, 40, 20, 35], 50, 35),    # order of the input does not matter
    (list(range(1, 21)), 95, 19),      # ceil(19) = 19
    (list(range(1, 21)), 99, 20),      # ceil(19.8) = 20
    (list(range(1, 101)), 99, 99),     # ceil(99) = 99
    ([3], 99, 3), ([3], 0, 3),         # rank is at least 1
    ([], 50, None),
])
def test_percentile_is_nearest_rank(values, p, expected):
    assert report.percentile(values, p) == expected


def test_summarize_counts_failures_against_success_only():
    s = report.summarize(samples(10, fail=2), wall_s=4.0)
    assert (s["count"], s["succeeded"], s["failed"]) == (12, 10, 2)
    assert s["success_rate"] == round(10 / 12, 4)
    assert s["latency_ms"] == {"p50": 500.0, "p95": 1000.0, "p99": 1000.0}  # failures' 3 ms left out
    assert s["ttft_ms"] == {"p50": 50.0, "p95": 100.0, "p99": 100.0}
    assert s["tokens_per_s"] == {"mean": 45.5, "p50": 45.0}
    assert s["requests_per_s"] == 3.0 and s["errors"] == ["HTTP 503: server busy"]


def test_summarize_of_nothing_has_no_figures():
    s = report.summarize([], None)
    assert s["count"] == 0 and s["success_rate"] == 0.0 and s["ttft_ms"]["p95"] is None
    assert s["requests_per_s"] is None and s["tokens_per_s"]["mean"] is None


def test_targets_pass_and_fail_by_their_rules():
    good = report.judge(report.summarize(samples(10), 1.0), TARGETS, 10)
    assert all(t["pass"] for t in good.values())
    assert good["ttft_ms"] == {"target": 300, "rule": "<=", "value": 100.0, "pass": True}
    slow = report.judge(report.summarize(samples(40), 1.0), {**TARGETS, "tokens_per_s": 61}, 9)
    assert not slow["ttft_ms"]["pass"]            # TTFT P95 = 380 ms > 300
    assert not slow["tokens_per_s"]["pass"]       # P50 = 60 < 61
    assert not slow["concurrent_users"]["pass"]   # 9 < 10
    assert slow["success_rate"]["pass"]
    lossy = report.judge(report.summarize(samples(9, fail=1), 1.0), TARGETS, 10)
    assert not lossy["success_rate"]["pass"] and lossy["success_rate"]["value"] == 0.9
    assert report.failed_targets({"targets": lossy}) == ["success_rate"]


def test_missing_figures_and_unknown_targets_fail():
    judged = report.judge(report.summarize([], None), {**TARGETS, "made_up": 1}, 0)
    assert not any(t["pass"] for t in judged.values())


def fake_report():
    def entry(n, fail=0):
        stats = report.summarize(samples(n, fail), 2.0)
        ok = [s for s in samples(n) if s["ok"]]
        return {"model": "testbed/tiny", "stats": stats, "concurrency_reached": 10, "checklist": None,
                "targets": report.judge(stats, TARGETS, 10),
                "samples": {k: [s[k] for s in ok] for k in ("latency_ms", "ttft_ms", "tokens_per_s")}}
    hosts = {"cpu-xeon-1": entry(20, fail=1), "dual-gpu-1": entry(20), "dgx-spark-1": entry(5)}
    hosts["dgx-spark-1"]["checklist"] = {"cold_start": {"ok": True, "load_ms": 301.0, "ttft_ms": 450.0},
                                         "keep_alive": {"ok": False, "still_loaded": False}}
    stats = report.summarize(samples(45, fail=1), 2.0)
    fleet = {"stats": stats, "concurrency_reached": 10, "targets": report.judge(stats, TARGETS, 10)}
    return {"started": "2025-01-01T12:00:00+00:00", "level": "quick", "requests": 20, "concurrency": 5,
            "hosts": hosts, "fleet": fleet, "unreachable": {"gone-1": "TimeoutError: timed out"}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "20250101T120000Z"
    return out, report.write_all(fake_report(), out)


def test_json_has_the_stable_schema(written):
    out, _ = written
    doc = json.loads((out / "benchmark.json").read_text())
    assert doc["schema"] == "ollama-deploy/benchmark/1"
    assert {"started", "level", "hosts", "fleet"} <= set(doc)
    for h in doc["hosts"].values():
        assert {"model", "stats", "targets", "concurrency_reached", "samples"} <= set(h)
        assert {"count", "success_rate", "latency_ms", "ttft_ms", "tokens_per_s", "requests_per_s", "errors"} \
            <= set(h["stats"])
        assert set(h["targets"]) == set(TARGETS)


def test_markdown_names_every_host_and_marks_targets(written):
    out, _ = written
    md = (out / "benchmark.md").read_text()
    for name in ("cpu-xeon-1", "dual-gpu-1", "dgx-spark-1", "fleet"):
        assert f"## {name}" in md
    assert "**FAIL**" in md and "| pass |" in md       # cpu-xeon-1 misses success rate, dual-gpu-1 passes
    assert "gone-1: unreachable" in md and "cold start" in md and "keep alive | **FAIL**" in md


def test_png_is_a_real_image(written):
    out, _ = written
    data = (out / "latency.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def parse_prometheus(text):
    """{metric: [(labels, value)]}; asserts each family has HELP and TYPE before its samples."""
    helped, typed, found = set(), set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
            assert line.split()[3] in ("gauge", "counter", "summary", "histogram", "untyped")
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m.group(1) in helped and m.group(1) in typed, m.group(1)
            found.setdefault(m.group(1), []).append((m.group(2), float(m.group(3))))
    return found


def test_prometheus_text_parses():
    entry = fake_report()["hosts"]["cpu-xeon-1"]
    found = parse_prometheus(report.prometheus_text(entry, 'odd"model\\name', 1735732800.0))
    assert {"ollama_deploy_ttft_seconds", "ollama_deploy_tokens_per_second", "ollama_deploy_requests_total",
            "ollama_deploy_success_ratio", "ollama_deploy_benchmark_timestamp_seconds"} <= set(found)
    ttft = dict(found["ollama_deploy_ttft_seconds"])
    assert ttft['{quantile="0.95",model="odd\\"model\\\\name"}'] == 0.19   # P95 of 10..200 ms by 10
    assert found["ollama_deploy_requests_total"][0][1] == 21
    assert found["ollama_deploy_benchmark_timestamp_seconds"][0][1] == 1735732800.0


def test_prometheus_writes_nan_when_there_is_no_figure():
    stats = report.summarize([{"ok": False, "latency_ms": 1.0, "error": "x"}], 1.0)
    found = parse_prometheus(report.prometheus_text({"stats": stats, "targets": {}}, "m", 0))
    assert all(math.isnan(v) for _, v in found["ollama_deploy_ttft_seconds"])

"""Load-test figures: nearest-rank percentiles, targets, and the report files."""
import json
import re
import struct

import pytest

from ollama_deploy.bench import loadreport

TARGETS = {"ttft_ms": 300, "tokens_per_s": 30, "concurrent_users": 10, "success_rate": 1.0}


def results(n=10, fail=0):
    ok = [{"ok": True, "latency_s": i / 10, "ttft_ms": 10.0 * i, "tokens_per_s": 40.0 + i} for i in range(1, n + 1)]
    return ok + [{"ok": False, "latency_s": 0.0, "error": "HTTP 503: server busy"}] * fail


@pytest.mark.parametrize("values, p, expected", [
    ([15, 20, 35, 40, 50], 5, 15), ([15, 20, 35, 40, 50], 30, 20), ([15, 20, 35, 40, 50], 40, 20),
    ([15, 20, 35, 40, 50], 50, 35), ([15, 20, 35, 40, 50], 100, 50), ([3], 99, 3), ([], 50, None),
])
def test_nearest_rank_percentile(values, p, expected):
    # The textbook nearest-rank examples: rank = ceil(p/100 * N).
    assert loadreport.percentile(values, p) == expected


def test_summary_counts_failures_and_keeps_their_messages():
    s = loadreport.summarize(results(10, fail=2), wall_s=2.0)
    assert (s["requests"], s["succeeded"]) == (12, 10)
    assert s["success_rate"] == pytest.approx(10 / 12)
    assert s["ttft_ms"]["p95"] == 100.0 and s["latency_ms"]["p50"] == 500.0
    assert s["requests_per_s"] == 5.0 and s["errors"] == ["HTTP 503: server busy"]


def test_targets_pass_and_fail_on_the_right_side():
    s = loadreport.summarize(results(10), wall_s=1.0)
    verdict = loadreport.judge(s, TARGETS, 10)
    assert verdict["ttft_ms"]["pass"] and verdict["tokens_per_s"]["pass"] and verdict["concurrent_users"]["pass"]
    slow = loadreport.judge(s, {**TARGETS, "ttft_ms": 50, "tokens_per_s": 60}, 5)
    assert not slow["ttft_ms"]["pass"] and not slow["tokens_per_s"]["pass"] and not slow["concurrent_users"]["pass"]


@pytest.fixture
def report():
    stats = loadreport.summarize(results(10), 1.0)
    host = {"model": "m", "concurrency": 5, "stats": stats, "targets": loadreport.judge(stats, TARGETS, 5),
            "samples": {"latency_ms": [100.0, 200.0], "tokens_per_s": [40.0, 41.0]}}
    return {"started": "2026-11-25T00:00:00+00:00", "level": "quick", "unreachable": [],
            "hosts": {"gpu-a": host, "cpu-b": host}, "fleet": {"stats": stats}}


def test_report_files(report, tmp_path):
    data = json.loads(loadreport.write_json(report, tmp_path).read_text())
    assert data["schema"] == "ollama-deploy/benchmark/1" and set(data["hosts"]) == {"gpu-a", "cpu-b"}
    md = loadreport.write_markdown(report, tmp_path).read_text()
    assert "| gpu-a |" in md and "| cpu-b |" in md and "| fleet |" in md and "FAIL" in md
    png = loadreport.write_plot({n: h["samples"] for n, h in report["hosts"].items()}, tmp_path).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 100 and height > 100


def test_prometheus_text_is_valid_exposition_format(report):
    text = loadreport.prometheus_text(report["hosts"]["gpu-a"], "m", 1764000000)
    names = set()
    for line in text.splitlines():
        if line.startswith("# "):
            assert re.match(r"# (HELP|TYPE) ollama_deploy_\w+ ", line)
            continue
        m = re.fullmatch(r"(ollama_deploy_\w+)(\{[^}]*\})? (-?[0-9.e+]+)", line)
        assert m, line
        names.add(m.group(1))
    assert {"ollama_deploy_ttft_seconds", "ollama_deploy_tokens_per_second", "ollama_deploy_requests_total",
            "ollama_deploy_success_ratio", "ollama_deploy_benchmark_timestamp_seconds"} <= names

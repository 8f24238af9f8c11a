"""`python -m tasks.benchmark` against the converged testbed: quick level, seed 001's checklist,
the three report files and the Prometheus textfile on the hosts."""
import json
import re
import struct
import subprocess
import sys

import pytest

from testbed.deployrun import run_deploy
from testbed.layout import PROJECT_ROOT

PROM_FILE = "/var/lib/prometheus/node-exporter/ollama_deploy.prom"
METRICS = ("ollama_deploy_ttft_seconds", "ollama_deploy_tokens_per_second", "ollama_deploy_requests_total",
           "ollama_deploy_success_ratio", "ollama_deploy_benchmark_timestamp_seconds")


@pytest.fixture(scope="module")
def converged(deploy_testbed):
    """The hosts deployed (a quick no-op when an earlier test already converged them)."""
    run = run_deploy(deploy_testbed.inventory_path)
    assert run.rc == 0, run.stderr[-3000:]
    return deploy_testbed


@pytest.fixture(scope="module")
def bench(converged, tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark")
    p = subprocess.run([sys.executable, "-m", "tasks.benchmark", str(converged.inventory_path), "--level", "quick",
                        "--checklist", "--prometheus", "--out", str(out), "--deadline", "120"],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    (report_dir,) = out.iterdir()
    assert p.stdout.strip().splitlines()[-1] == str(report_dir)  # the path is printed last
    return converged, report_dir


def test_json_report_has_every_field_for_every_host(bench):
    tb, out = bench
    doc = json.loads((out / "benchmark.json").read_text())
    assert doc["schema"] == "ollama-deploy/benchmark/1" and doc["level"] == "quick" and doc["unreachable"] == {}
    assert set(doc["hosts"]) == {h.name for h in tb.hosts}
    for name, host in [*doc["hosts"].items(), ("fleet", doc["fleet"])]:
        s = host["stats"]
        assert s["success_rate"] == 1.0 and s["errors"] == [], name
        assert s["count"] == (20 if name != "fleet" else 20 * len(tb.hosts)), name
        assert all(s[k][q] > 0 for k in ("latency_ms", "ttft_ms") for q in ("p50", "p95", "p99")), name
        assert s["tokens_per_s"]["mean"] > 0 and s["tokens_per_s"]["p50"] > 0 and s["requests_per_s"] > 0, name
        assert set(host["targets"]) == {"ttft_ms", "tokens_per_s", "concurrent_users", "success_rate"}, name
        assert host["targets"]["success_rate"]["pass"] and host["concurrency_reached"] >= 10, name
    for name, host in doc["hosts"].items():
        steps = host["checklist"]
        assert set(steps) == {"cold_start", "warm_single", "concurrent_4", "concurrent_10", "keep_alive"}, name
        assert all(step["ok"] for step in steps.values()), (name, steps)
        assert steps["cold_start"]["load_ms"] > 0 and steps["keep_alive"]["still_loaded"], name


def test_markdown_and_png(bench):
    tb, out = bench
    md = (out / "benchmark.md").read_text()
    assert all(f"## {h.name}" in md for h in tb.hosts) and "## fleet" in md
    assert re.search(r"\| (pass|\*\*FAIL\*\*)", md)
    png = (out / "latency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert min(struct.unpack(">II", png[16:24])) > 0


def test_prometheus_file_on_every_host(bench):
    tb, _ = bench
    for h in tb.hosts:
        p = subprocess.run(["ssh", "-F", str(tb.ssh_config), h.name, f"cat {PROM_FILE}; ls -a {PROM_FILE.rsplit('/', 1)[0]}"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        for metric in METRICS:
            assert f"# TYPE {metric} gauge" in p.stdout and f"\n{metric}{{" in p.stdout, (h.name, metric)
        assert ".ollama_deploy." not in p.stdout  # no temp file left behind

"""The quick benchmark and seed 001's checklist against the converged testbed, with the report."""
import json
import subprocess
import sys

from testbed.deployrun import PROJECT_ROOT
from tests.deploy.hosts import ssh


def test_quick_benchmark_reports_every_host(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    p = subprocess.run([sys.executable, "-m", "ollama_deploy.bench.loadtest", str(tb.inventory_path), "--level", "quick",
                        "--checklist", "--prometheus", "--out", str(tmp_path), "--deadline", "120"],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = next(tmp_path.iterdir())
    report = json.loads((out / "benchmark.json").read_text())
    assert set(report["hosts"]) == {h.name for h in tb.hosts}
    for name, host in report["hosts"].items():
        stats = host["stats"]
        assert stats["requests"] == 20 and stats["success_rate"] == 1.0, name
        assert all(stats["latency_ms"][k] and stats["ttft_ms"][k] for k in ("p50", "p95", "p99"))
        assert stats["tokens_per_s"]["p50"] > 0 and stats["requests_per_s"] > 0
        assert set(host["targets"]) == {"ttft_ms", "tokens_per_s", "concurrent_users", "success_rate"}
        assert set(host["checklist"]) == {"cold start", "warm single", "4 concurrent", "10 concurrent",
                                          "keep-alive persistence"}
        assert host["checklist"]["keep-alive persistence"].startswith("model still loaded")
    assert (out / "benchmark.md").read_text().count("| fleet |") == 1
    assert (out / "latency.png").read_bytes()[:4] == b"\x89PNG"
    prom = ssh(tb, tb.hosts[0].name, "cat /var/lib/prometheus/node-exporter/ollama_deploy.prom").stdout
    assert "ollama_deploy_tokens_per_second{" in prom and "ollama_deploy_success_ratio{" in prom
    assert f"report: {out}" in p.stdout

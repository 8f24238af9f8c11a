"""python -m ollama_deploy.bench.tune on the testbed: a bounded sweep through the deploy and the load test, the best
point written as tuned/<host>.json for the next deploy, the host given back as it was (also when
interrupted). The numbers mean nothing on these hosts; the mechanism is what is tested."""
import json
import os
import signal
import subprocess
import sys
import time

from testbed.deployrun import PROJECT_ROOT, run_deploy
from tests.deploy.hosts import ssh

CONF = "/etc/systemd/system/ollama.service.d/performance.conf"


def _tune(tb, host, out, *grid, wait=True):
    argv = [sys.executable, "-m", "ollama_deploy.bench.tune", str(tb.inventory_path), "--host", host, "--level", "quick",
            "--out", str(out), *grid]
    env = {**os.environ, "OLLAMA_DEPLOY_TUNED_DIR": str(out)}
    if not wait:
        return subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_a_sweep_on_the_real_host_picks_a_point_the_next_deploy_applies(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    out, before = tmp_path / "tuned", ssh(tb, host, f"cat {CONF}").stdout
    tuned = _tune(tb, host, out, "--parallel", "1,2", "--context", "4096", "--kv", "f16,q8_0", "--threads", "1,2")
    assert tuned.returncode in (0, 1), tuned.stderr[-3000:]  # 1: no point met the (seed 004) targets
    assert ssh(tb, host, f"cat {CONF}").stdout == before  # the deploy's own configuration again
    sweep = json.loads((out / f"{host}-sweep.json").read_text())
    assert len(sweep["points"]) == 8 and all("stats" in p and p["stats"]["succeeded"] for p in sweep["points"])
    assert {p["point"]["ollama_model_parameters"]["testbed/real-tiny"]["num_thread"] for p in sweep["points"]} == {1, 2}
    assert (out / f"{host}.png").stat().st_size > 0 and (out / f"{host}.md").read_text().count("\n| ") == 8 + 1
    chosen = json.loads((out / f"{host}.json").read_text())["settings"]
    assert chosen == sweep["chosen"]["point"] and tuned.stdout.startswith(f"tune {host}: chose ")
    env = {"OLLAMA_DEPLOY_TUNED_DIR": str(out)}
    try:
        applied = run_deploy(tb.inventory_path, "--limit", host, env=env)
        assert applied.rc == 0, applied.stderr[-3000:]
        conf = ssh(tb, host, f"cat {CONF}").stdout
        assert f'OLLAMA_NUM_PARALLEL={chosen["ollama_num_parallel"]}"' in conf
        assert f'OLLAMA_KV_CACHE_TYPE={chosen["ollama_kv_cache_type"]}"' in conf
        again = run_deploy(tb.inventory_path, "--limit", host, env=env)
        assert again.rc == 0 and again.changed_ops() == [], again.changed_ops()
    finally:
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0


def test_a_sweep_on_a_gpu_host_and_an_interrupted_one_leave_it_as_it_was(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "dual_gpu")
    before = ssh(tb, host, f"cat {CONF}").stdout
    done = _tune(tb, host, tmp_path / "a", "--parallel", "1,2", "--context", "4096", "--kv", "f16")
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert len(json.loads((tmp_path / "a" / f"{host}-sweep.json").read_text())["points"]) == 2
    running = _tune(tb, host, tmp_path / "b", "--parallel", "1,2,3,4", "--context", "4096", "--kv", "f16",
                    wait=False)
    time.sleep(4)  # inside the first points
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=300)
    assert "interrupted; restoring the deploy's configuration" in err, err[-3000:]
    assert ssh(tb, host, f"cat {CONF}").stdout == before

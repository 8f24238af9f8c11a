"""The deploy on real systemd hosts: converge, verify with testinfra, no-op rerun, per-host change."""
import json
import subprocess
import sys

from ollama_deploy.gocompat import OLLAMA_VERSION
from testbed import core
from testbed.deployrun import run_deploy
from testbed.layout import PROJECT_ROOT
from tests.deploy.hosts import inventory_with, model_of, ssh


def main_pids(tb):
    return {h.name: int(ssh(tb, h.name, "systemctl show -p MainPID --value ollama").stdout.strip() or 0)
            for h in tb.hosts}


def test_fresh_deploy_converges_every_host(deploy_testbed, first_run):
    assert first_run.rc == 0, first_run.stderr[-3000:]
    assert first_run.results["failed_hosts"] == []
    for h in deploy_testbed.hosts:
        assert first_run.changed_ops(h.name), f"{h.name} changed nothing on a fresh host"
        smoke = json.loads((PROJECT_ROOT / "reports/smoke" / f"{h.name}.json").read_text())
        assert smoke["tokens_per_s"] > 0 and smoke["ttft_ms"] > 0 and smoke["eval_count"] > 0


def test_testinfra_suite_passes_on_every_host(deploy_testbed, first_run):
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/testinfra",
                        "--inventory", str(deploy_testbed.inventory_path)],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:]
    assert " passed" in p.stdout and " failed" not in p.stdout


def test_second_run_changes_nothing_restarts_nothing_and_fetches_nothing(deploy_testbed, first_run):
    before = main_pids(deploy_testbed)
    log = deploy_testbed.state_dir / "mirror-access.log"
    seen = log.read_text().count("\n")
    again = run_deploy(deploy_testbed.inventory_path)
    assert again.rc == 0, again.stderr[-3000:]
    assert again.changed_ops() == []
    assert main_pids(deploy_testbed) == before
    # The memory budget's model metadata is known by the digest each host reports: no registry request.
    assert [line for line in log.read_text().splitlines()[seen:] if "/v2/" in line] == []


def loaded_models(tb, host: str) -> list[str]:
    return [m["name"] for m in json.loads(ssh(tb, host, "curl -fsS 127.0.0.1:11434/api/ps").stdout)["models"]]


def test_a_rerun_loads_no_model_until_ollama_restarts(deploy_testbed, first_run):
    """A no-op rerun leaves memory alone (a load would reset the keep-alive, and on a GPU host could
    evict the model being served); a restarted Ollama (a crash, a reboot) is generated with again."""
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    for name in loaded_models(tb, host):  # unloaded, as after the keep-alive ran out
        ssh(tb, host, f"curl -fsS 127.0.0.1:11434/api/generate -d '{json.dumps({'model': name, 'keep_alive': 0})}'")
    assert loaded_models(tb, host) == []
    again = run_deploy(tb.inventory_path, "--limit", host)
    assert again.rc == 0, again.stderr[-3000:]
    assert f"[{host}] smoke: passed before against this Ollama process" in again.stderr
    assert loaded_models(tb, host) == []
    ssh(tb, host, "systemctl restart ollama")
    restarted = run_deploy(tb.inventory_path, "--limit", host)
    assert restarted.rc == 0 and restarted.changed_ops() == [], restarted.stderr[-3000:]
    assert f"[{host}] smoke {model_of(tb, host)}" in restarted.stderr and loaded_models(tb, host)
    forced = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_smoke_every_run=true")
    assert f"[{host}] smoke {model_of(tb, host)}" in forced.stderr, forced.stderr[-3000:]


def test_one_host_override_changes_and_restarts_only_that_host(deploy_testbed, first_run, tmp_path):
    target = next(h for h in deploy_testbed.hosts if h.profile == "dual_gpu")
    inventory = inventory_with(deploy_testbed, tmp_path, target.name, ollama_keep_alive="2h")
    before = main_pids(deploy_testbed)
    run = run_deploy(inventory)
    assert run.rc == 0, run.stderr[-3000:]
    changed_hosts = {h for _, h in run.changed_ops()}
    assert changed_hosts == {target.name}
    after = main_pids(deploy_testbed)
    assert after[target.name] != before[target.name]
    assert {n: p for n, p in after.items() if n != target.name} == {n: p for n, p in before.items() if n != target.name}
    conf = ssh(deploy_testbed, target.name, "cat /etc/systemd/system/ollama.service.d/performance.conf").stdout
    assert 'Environment="OLLAMA_KEEP_ALIVE=2h"' in conf


def test_extra_model_is_pulled_and_prune_removes_unlisted(deploy_testbed, first_run):
    host = deploy_testbed.hosts[0].name
    run = run_deploy(deploy_testbed.inventory_path, "--limit", host, "--data", 'ollama_extra_models=["testbed/small"]')
    assert run.rc == 0, run.stderr[-3000:]
    assert ("Models | Model testbed/small", host) in run.changed_ops()
    assert "testbed/small:latest" in ssh(deploy_testbed, host, "ollama list").stdout
    pruned = run_deploy(deploy_testbed.inventory_path, "--limit", host, "--data", "ollama_prune_models=true")
    assert pruned.rc == 0, pruned.stderr[-3000:]
    listed = ssh(deploy_testbed, host, "ollama list").stdout
    assert "testbed/small" not in listed and f"{model_of(deploy_testbed, host)}:latest" in listed


def test_failed_smoke_fails_only_that_host_with_the_reason(deploy_testbed, first_run, tmp_path):
    host = deploy_testbed.hosts[0].name
    run = run_deploy(inventory_with(deploy_testbed, tmp_path, host, ollama_smoke_model="testbed/absent"))
    assert run.rc != 0
    assert run.results["failed_hosts"] == [host]  # the other hosts went on and passed
    summary = _failed_hosts_summary(run)
    assert len(summary) == 1 and summary[0].startswith(f"{host}: smoke generate with testbed/absent failed: HTTP 404")
    assert summary[0].endswith("nothing changed in this run to roll back")
    assert "Traceback" not in run.stderr  # an expected failure is its line, nothing more


def _failed_hosts_summary(run) -> list[str]:
    """The lines under "--> Failed hosts:", which the deploy prints last."""
    tail = run.stderr.split("--> Failed hosts:\n")[-1] if "--> Failed hosts:" in run.stderr else ""
    return [line.strip() for line in tail.splitlines() if line.startswith("    ")]


def test_an_unreachable_host_fails_alone_and_is_named_at_the_end(deploy_testbed, first_run):
    tb = deploy_testbed
    unreachable = tb.hosts[-1].name
    core.stop_host(tb, unreachable)
    try:
        run = run_deploy(tb.inventory_path)
    finally:
        core.up(tb, log=lambda *_: None)
    assert run.rc != 0
    assert run.results["failed_hosts"] == [unreachable]
    checked = {h for name, h in run.changed_ops(include_checks=True) if name.startswith("Smoke")}
    assert checked == {h.name for h in tb.hosts} - {unreachable}  # the others went on to the end
    assert _failed_hosts_summary(run) == [f"{unreachable}: could not connect (its error is shown where the run "
                                          "connected)"]


def test_air_gapped_install_uploads_the_artifact_instead_of_downloading(deploy_testbed, first_run):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon")
    ssh(tb, host.name, "rm /usr/local/lib/ollama/.ollama-deploy-release")  # as if never installed here
    access_log = tb.state_dir / "mirror-access.log"
    downloads_before = access_log.read_text().count(f"{host.ip} GET /ollama/releases")
    local_dir = tb.mirror_root / "ollama/releases/download"  # a directory on the control node
    run = run_deploy(tb.inventory_path, "--limit", host.name, "--data", f"ollama_release_local_dir={local_dir}")
    assert run.rc == 0, run.stderr[-3000:]
    changed = [name for name, _ in run.changed_ops(host.name)]
    assert any(n.startswith("Install Ollama | Upload ollama-linux-amd64.tar.zst") for n in changed)
    assert f"Install Ollama | Ollama release {OLLAMA_VERSION}" in changed
    assert access_log.read_text().count(f"{host.ip} GET /ollama/releases") == downloads_before
    assert ssh(tb, host.name, "ls /var/cache/ollama-deploy").stdout.strip() == ""  # upload not kept


def test_model_parameters_apply_through_a_tuned_model(deploy_testbed, first_run):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    model = model_of(tb, host)
    params = json.dumps({model: {"num_thread": 3, "num_ctx": 2048}})
    run = run_deploy(tb.inventory_path, "--limit", host, "--data", f"ollama_model_parameters={params}")
    assert run.rc == 0, run.stderr[-3000:]
    assert (f"Models | Tuned {model}", host) in run.changed_ops()
    shown = json.loads(ssh(tb, host, "curl -fsS 127.0.0.1:11434/api/show -d '%s'"
                           % json.dumps({"model": f"{model}:latest-tuned"})).stdout)
    assert "num_thread" in shown["parameters"] and "3" in shown["parameters"]
    smoke = json.loads((PROJECT_ROOT / "reports/smoke" / f"{host}.json").read_text())
    assert smoke["model"] == f"{model}:latest-tuned"
    # Proof the tuning took effect: Ollama started llama-server with -t 3 and -c 2048 x parallel.
    journal = ssh(tb, host, "journalctl -u ollama -o cat --no-pager | grep -a 'starting llama-server' | tail -1").stdout
    assert " -t 3" in journal and " -c 8192 " in journal  # num_ctx 2048 x OLLAMA_NUM_PARALLEL 4
    again = run_deploy(tb.inventory_path, "--limit", host, "--data", f"ollama_model_parameters={params}")
    assert again.rc == 0 and again.changed_ops() == []


def test_one_thread_count_for_every_model_reaches_llama_server(deploy_testbed, first_run):
    """Ollama passes -t only for a model with num_thread and logs no thread count; LLAMA_ARG_THREADS
    in its environment reaches llama-server (llm/llama_server.go SetupLlamaServerCommandEnv), whose
    system_info line says what it computes with. On real Ollama."""
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if tb.ollama_kind(h.profile) == "real")
    run = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_llama_threads=1")
    assert run.rc == 0, run.stderr[-3000:]
    assert 'Environment="LLAMA_ARG_THREADS=1"\n' in ssh(
        tb, host, "cat /etc/systemd/system/ollama.service.d/performance.conf").stdout
    report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
    (threads,) = [c for c in report["checks"] if c["setting"] == "LLAMA_ARG_THREADS" and "system_info" in c["where"]]
    assert threads["ok"] and threads["seen"] == "n_threads = 1", threads
    # The running llama-server got it from Ollama's environment (no -t on its command line).
    proc = ssh(tb, host, "p=$(pgrep -x llama-server | head -1); tr '\\0' '\\n' </proc/$p/environ "
                         "| grep '^LLAMA_ARG_THREADS='; tr '\\0' ' ' </proc/$p/cmdline").stdout
    assert proc.startswith("LLAMA_ARG_THREADS=1\n") and " -t " not in proc, proc
    back = run_deploy(tb.inventory_path, "--limit", host)
    assert back.rc == 0 and "LLAMA_ARG_THREADS" not in ssh(
        tb, host, "cat /etc/systemd/system/ollama.service.d/performance.conf").stdout


def test_a_tuned_context_of_a_million_tokens_converges_to_no_change(deploy_testbed, first_run):
    """/api/show prints a stored num_ctx of 1048576 with Go's %#v of a float64 (1.048576e+06): the
    rerun must read that back as the same number and change nothing."""
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    model = model_of(tb, host)
    params = json.dumps({model: {"num_ctx": 1048576}})
    run = run_deploy(tb.inventory_path, "--limit", host, "--data", f"ollama_model_parameters={params}")
    assert run.rc == 0, run.stderr[-3000:]
    shown = json.loads(ssh(tb, host, "curl -fsS 127.0.0.1:11434/api/show -d '%s'"
                           % json.dumps({"model": f"{model}:latest-tuned"})).stdout)
    assert "1.048576e+06" in shown["parameters"]  # what the rerun has to read
    again = run_deploy(tb.inventory_path, "--limit", host, "--data", f"ollama_model_parameters={params}")
    assert again.rc == 0, again.stderr[-3000:]
    assert again.changed_ops() == []


def test_a_context_above_what_the_model_was_trained_on_is_said_at_plan_time(deploy_testbed, first_run):
    # The CPU profile asks for 8192 tokens; the real test model was trained on 4096, so Ollama clamps.
    cpu = next(h for h in deploy_testbed.hosts if h.profile == "cpu_xeon").name
    model = model_of(deploy_testbed, cpu)
    assert (f"[{cpu}] ollama_context_length is 8192 but {model} was trained on 4096 tokens: "
            "Ollama runs it at 4096") in first_run.stderr
    # Said once at plan time and once in the run's summary; the double's models were trained on 131072.
    assert first_run.stderr.count("was trained on") == 2
    summary = first_run.stderr.split("--> Warnings:\n")[-1]
    assert f"{cpu}: ollama_context_length is 8192 but {model} was trained on 4096 tokens" in summary


def test_a_thinking_or_embedding_model_first_in_the_list_still_passes_the_smoke(deploy_testbed, first_run,
                                                                               tmp_path):
    """Seed 000 lists deepseek-r1:7b first. On real Ollama a thinking model streams only `thinking`
    for a while, and an embedding model cannot generate at all (400): the smoke passes over the
    embedding model, measures the thinking one, and verify still loads what it checks."""
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if tb.ollama_kind(h.profile) == "real")
    embed, think = "testbed/real-tiny-embed", "testbed/real-tiny-think"
    run = run_deploy(inventory_with(tb, tmp_path, host, ollama_models=[embed, think]), "--limit", host)
    assert run.rc == 0, run.stderr[-3000:]
    assert f"[{host}] smoke: {embed} (embedding) cannot generate, passed over" in run.stderr
    smoke = json.loads((PROJECT_ROOT / "reports/smoke" / f"{host}.json").read_text())
    assert smoke["model"] == think and smoke["thinking"] and smoke["ttft_ms"] > 0 and smoke["eval_count"] == 16
    assert smoke["answer_ms"] is None and smoke["response"] == ""  # the tiny model never stops reasoning
    only_embed = run_deploy(inventory_with(tb, tmp_path, host, ollama_models=[embed]), "--limit", host)
    assert only_embed.rc == 0, only_embed.stderr[-3000:]
    assert f"[{host}] smoke skipped: none of {embed} can generate" in only_embed.stderr
    report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
    assert report["ok"] and any(c["setting"] == f"offload {embed}:latest" for c in report["checks"])
    back = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_prune_models=true")
    assert back.rc == 0, back.stderr[-3000:]
    assert embed not in ssh(tb, host, "ollama list").stdout


def test_a_model_the_registry_lacks_is_named_and_the_others_are_still_pulled(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = tb.hosts[0].name
    models = ["testbed/no-such-model", model_of(tb, host), "testbed/small"]  # small: a double-only GGUF
    run = run_deploy(inventory_with(tb, tmp_path, host, ollama_models=models), "--limit", host)
    assert run.rc != 0, run.stderr[-1500:]
    (line,) = _failed_hosts_summary(run)
    assert line.startswith(f"{host}: not pulled, the registry does not have them: model 'testbed/no-such-model': "
                           "GET ") and "returned HTTP 404" in line and "nothing changed in this run" in line
    warnings = run.stderr.split("--> Warnings:\n")[-1].split("--> Failed hosts:")[0]
    assert f"{host}: model 'testbed/no-such-model': GET" in warnings and "Traceback" not in run.stderr
    listed = ssh(tb, host, "ollama list").stdout
    assert "testbed/small:latest" in listed  # the host's other models were pulled
    smoke = json.loads((PROJECT_ROOT / "reports/smoke" / f"{host}.json").read_text())
    assert smoke["model"] != "testbed/no-such-model"
    # Without the memory budget nothing is known before the pulls: the failed pull does not stop the others.
    ssh(tb, host, "ollama rm testbed/small")
    blind = run_deploy(inventory_with(tb, tmp_path, host, ollama_models=models, ollama_check_memory_budget=False),
                       "--limit", host)
    (line,) = _failed_hosts_summary(blind)
    assert line == f"{host}: testbed/no-such-model: the pull failed (its error is above); nothing changed in this " \
                   "run to roll back", line
    assert "testbed/small:latest" in ssh(tb, host, "ollama list").stdout
    # The fleet cache fetches every model at plan time: the one the registry lacks is named the same way.
    ssh(tb, host, "ollama rm testbed/small")
    cached = run_deploy(inventory_with(tb, tmp_path, host, ollama_models=models, ollama_fleet_cache=True),
                        "--limit", host)
    (line,) = _failed_hosts_summary(cached)
    assert line.startswith(f"{host}: not pulled, the registry does not have them: model 'testbed/no-such-model'")
    assert "testbed/small:latest" in ssh(tb, host, "ollama list").stdout
    back = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_prune_models=true")
    assert back.rc == 0, back.stderr[-3000:]


def test_a_valid_but_dubious_setting_is_applied_with_a_warning_the_summary_repeats(deploy_testbed, first_run):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    run = run_deploy(tb.inventory_path, "--limit", host, "--data", "ollama_keep_alive=0")
    try:
        assert run.rc == 0, run.stderr[-3000:]
        warning = "ollama_keep_alive is 0: Ollama unloads a model right after each request"
        assert f"[{host}] {warning}" in run.stderr  # where it is found
        assert f"{host}: {warning}" in run.stderr.split("--> Warnings:\n")[-1]  # and in the summary
        assert 'OLLAMA_KEEP_ALIVE=0"' in ssh(tb, host, "cat /etc/systemd/system/ollama.service.d/performance.conf").stdout
    finally:
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0

"""tasks/tune's choice of a point, and where its tuned/<host>.json sits among the host's data."""
import json
from types import SimpleNamespace

from ollama_deploy.bench.tune import best, shortfall
from ollama_deploy.lib import plan


def _row(rps, **passes):
    names = ("ttft_ms", "tokens_per_s", "concurrent_users", "success_rate")
    targets = {n: {"pass": passes.get(n, True), "seen": 5, "target": 10, "rule": "≥"} for n in names}
    return {"point": {"rps": rps}, "stats": {"succeeded": 1, "requests_per_s": rps}, "targets": targets}


def test_the_fastest_point_meeting_the_targets_else_the_one_missing_them_least():
    met_slow, met_fast, missed = _row(10), _row(20), _row(99, concurrent_users=False)
    assert best([met_slow, missed, met_fast]) is met_fast
    assert shortfall(missed) == 0.5 and best([missed, _row(50, ttft_ms=False, success_rate=False)]) is missed
    assert best([{"point": {}, "refused": "no"}]) is None


def test_tuned_settings_sit_over_the_groups_and_under_the_hosts_own_data_and_the_command_line(tmp_path, monkeypatch):
    (tmp_path / "h.json").write_text(json.dumps({"settings": {"ollama_num_parallel": 2, "ollama_keep_alive": "2h",
                                                              "ollama_context_length": 8192}}))
    monkeypatch.setattr(plan, "TUNED_DIR", tmp_path)
    inventory = SimpleNamespace(get_host_data=lambda name: {"ollama_keep_alive": "1h"},
                                get_override_data=lambda: {"ollama_context_length": 4096})
    assert plan.tuned_data(SimpleNamespace(name="h", inventory=inventory)) == {"ollama_num_parallel": 2}
    assert plan.tuned_data(SimpleNamespace(name="other", inventory=inventory)) == {}

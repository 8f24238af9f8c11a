"""Ollama facts parse what the host prints (recorded from the testbed's test double and systemd 252)."""
from tasks.facts import OllamaModels, UnitState, canonical_model, parse_show_parameters, tuned_name


def test_unit_running():
    out = ["MainPID=4242", "ActiveState=active", "UnitFileState=enabled"]
    assert UnitState().process(out) == {"active": "active", "enabled": "enabled", "main_pid": 4242}


def test_unit_not_installed():
    out = ["MainPID=0", "ActiveState=inactive", "UnitFileState="]
    assert UnitState().process(out) == {"active": "inactive", "enabled": "not-found", "main_pid": 0}


def test_models_fact_uses_canonical_names():
    body = '{"models":[{"name":"testbed/tiny:latest"},{"name":"llama3.2:latest"},{"name":"qwen2.5-coder:7b"}]}'
    assert OllamaModels().process([body]) == {"testbed/tiny:latest", "llama3.2:latest", "qwen2.5-coder:7b"}
    assert canonical_model("registry.ollama.ai/library/llama3.2") == "llama3.2:latest"
    assert tuned_name("testbed/tiny") == "testbed/tiny:latest-tuned"


def test_show_parameters_text():
    text = 'num_ctx                        2048\nnum_thread                     3\nstop                           "<|im_end|>"\nstop                           "END"'
    assert parse_show_parameters(text) == {"num_ctx": ["2048"], "num_thread": ["3"], "stop": ["<|im_end|>", "END"]}

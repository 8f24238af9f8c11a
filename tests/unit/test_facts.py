"""Ollama facts parse what the host prints (recorded from the testbed's test double and systemd 252)."""
import hashlib
import os
import subprocess

from ollama_deploy.facts.ollama import BLOBS_VERIFIED, BlobStates, OllamaModels, UnitState, parse_show_parameters
from ollama_deploy.gocompat.names import canonical_model, tuned_name


def test_unit_running():
    out = ["MainPID=4242", "ActiveState=active", "UnitFileState=enabled"]
    assert UnitState().process(out) == {"active": "active", "enabled": "enabled", "main_pid": 4242}


def test_unit_not_installed():
    out = ["MainPID=0", "ActiveState=inactive", "UnitFileState="]
    assert UnitState().process(out) == {"active": "inactive", "enabled": "not-found", "main_pid": 0}


def test_models_fact_uses_canonical_names():
    body = ('{"models":[{"name":"testbed/tiny:latest","digest":"ab12"},{"name":"llama3.2:latest","digest":"cd"},'
            '{"name":"qwen2.5-coder:7b","digest":"ef"}]}')
    assert OllamaModels().process([body]) == {"testbed/tiny:latest": "sha256:ab12", "llama3.2:latest": "sha256:cd",
                                              "qwen2.5-coder:7b": "sha256:ef"}
    assert canonical_model("registry.ollama.ai/library/llama3.2") == "llama3.2:latest"
    assert tuned_name("testbed/tiny") == "testbed/tiny:latest-tuned"


def test_show_parameters_text():
    text = 'num_ctx                        2048\nnum_thread                     3\nstop                           "<|im_end|>"\nstop                           "END"'  # noqa: E501 (the text as the program prints it)
    assert parse_show_parameters(text) == {"num_ctx": ["2048"], "num_thread": ["3"], "stop": ["<|im_end|>", "END"]}


def test_blob_states_hash_only_blobs_changed_since_they_were_recorded(tmp_path):
    models = tmp_path / "models"
    (models / "blobs").mkdir(parents=True)
    names = []
    for content in (b"weights", b"template"):
        name = "sha256-" + hashlib.sha256(content).hexdigest()
        (models / "blobs" / name).write_bytes(content)
        names.append(name)
    calls = tmp_path / "sha256sum-calls"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "sha256sum").write_text(f"#!/bin/sh\necho call >> {calls}\nexec /usr/bin/sha256sum \"$@\"\n")
    (shim / "sha256sum").chmod(0o755)

    def states():
        fact = BlobStates()
        out = subprocess.run(["sh", "-c", fact.command(str(models), names)], capture_output=True, text=True,
                             env={**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}, check=True).stdout
        return fact.process(out.splitlines())

    assert {n: d for n, (d, _) in states().items()} == {n: n[7:] for n in names}
    assert calls.read_text().count("call") == 2  # nothing recorded yet: both hashed
    # What the seeding command records once every blob is verified:
    stat = "stat -c %s:%.9Y:%i"
    (models / BLOBS_VERIFIED).write_text("".join(
        f"{n} {subprocess.run(f'{stat} blobs/{n}', shell=True, cwd=models, capture_output=True, text=True).stdout}"
        for n in names))
    calls.unlink()
    assert {n: d for n, (d, _) in states().items()} == {n: n[7:] for n in names}
    assert not calls.exists()  # recorded and unchanged: not read again
    (models / "blobs" / names[0]).write_bytes(b"WEIGHTS")  # a write changes mtime: hashed again
    assert states()[names[0]][0] == hashlib.sha256(b"WEIGHTS").hexdigest()
    assert calls.read_text().count("call") == 1

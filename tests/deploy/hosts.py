"""Helpers the deploy tests share: a command on a testbed host, an inventory with one host changed."""
import subprocess

from testbed.inventory import models_for


def ssh(tb, host: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(tb.ssh_config), host, command], capture_output=True, text=True,
                          timeout=60)


def inventory_with(tb, tmp_path, host: str, **overrides):
    """A copy of the testbed inventory with per-host overrides for one host, as an operator would edit it."""
    inventory = tmp_path / f"{host}-override.py"
    profile = tb.host(host).profile
    inventory.write_text(
        f"exec(open({str(tb.inventory_path)!r}).read())\n"
        f"{profile} = [(name, {{**data, **{overrides!r}}}) if name == {host!r} else (name, data)"
        f" for name, data in {profile}]\n")
    return inventory


def model_of(tb, host: str) -> str:
    """The first model the testbed inventory gives a host (a real GGUF on real-Ollama hosts)."""
    profile = tb.host(host).profile
    return models_for(tb.ollama_kind(profile), profile)[0]

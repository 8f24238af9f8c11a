"""tasks/watch: what the check expects to find in Ollama's server config line, and a script sh accepts."""
import subprocess

from ollama_deploy.lib.plan import settings_from
from ollama_deploy.lib.profiles import PROFILES
from ollama_deploy.tasks.configure import render
from ollama_deploy.tasks.watch import expected_lines
from tests.unit.recorded import machine
from tests.unit.test_settings import group


def test_the_expected_values_are_ollamas_logged_forms_of_what_the_dropins_set():
    hw = machine("cpu_xeon")
    s = settings_from(hw, {**group("all"), **PROFILES["cpu_xeon"].settings, "ollama_keep_alive": "3600"})
    lines = expected_lines(s).splitlines()
    assert "OLLAMA_KEEP_ALIVE:1h0m0s" in lines and "OLLAMA_FLASH_ATTENTION:true" in lines
    assert not any(line.startswith(("OLLAMA_ORIGINS", "CUDA_")) for line in lines)


def test_the_rendered_check_script_is_valid_sh(tmp_path):
    for heal in (False, True):
        script = tmp_path / f"check-{heal}.sh"
        script.write_text(render("ollama-check.sh.j2", metrics="/tmp/m.prom", expected="/tmp/e", api="http://127.0.0.1:11434",
                                 want_library="CUDA", heal=heal))
        assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0

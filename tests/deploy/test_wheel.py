"""The package as another pyinfra project uses it: a wheel built from the checkout, installed (not
editable) in a fresh virtualenv, and a three-line deploy run from a directory outside the checkout."""
import json
import shutil
import subprocess
import sys
import zipfile

from testbed.deployrun import PROJECT_ROOT, DeployRun, run_deploy
from tests.deploy.hosts import ssh

OUTSIDE_DEPLOY = """from ollama_deploy import deploy_ollama

deploy_ollama(profile="cpu_xeon", settings={"ollama_keep_alive": "7m"})
"""


def _run(argv, cwd, timeout=600):
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_a_wheel_installed_elsewhere_deploys_with_its_templates(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    # Built from a copy, as from an sdist: setuptools builds in-tree, and a stale build/ could hide a file
    # the package lost.
    source = tmp_path / "source"
    shutil.copytree(PROJECT_ROOT, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "build", "reports", "*.egg-info", "__pycache__"))
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", source], tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("ollama_deploy-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"ollama_deploy"}
    assert "ollama_deploy/templates/ollama.service.j2" in names and "ollama_deploy/tasks/converge.py" in names

    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", venv], tmp_path).returncode == 0
    installed = _run([venv / "bin/pip", "install", "-q", "--disable-pip-version-check", wheel], tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]

    # The operator's own project: an inventory with the host in a group of their own, no group_data.
    outside = tmp_path / "site-deploy"
    outside.mkdir()
    (outside / "deploy.py").write_text(OUTSIDE_DEPLOY)
    (outside / "inventory.py").write_text(
        f"exec(open({str(tb.inventory_path)!r}).read())\n"
        f"llm_boxes = [(name, data) for name, data in cpu_xeon if name == {host!r}]\n"
        "del cpu_xeon, dual_gpu, dgx_spark  # the profile groups: this host takes deploy_ollama(profile=)\n")
    where = _run([venv / "bin/python", "-c", "import ollama_deploy; print(ollama_deploy.__file__)"], outside)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # not the checkout
    try:
        run = _run([venv / "bin/pyinfra", "-y", "inventory.py", "deploy.py"], outside)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        conf = ssh(tb, host, "cat /etc/systemd/system/ollama.service.d/performance.conf").stdout
        assert 'Environment="OLLAMA_KEEP_ALIVE=7m"' in conf  # the call's settings
        assert 'Environment="OLLAMA_KV_CACHE_TYPE=q8_0"' in conf  # the profile's, with no group_data
        again = _run([venv / "bin/pyinfra", "-y", "--json", "inventory.py", "deploy.py"], outside)
        rerun = DeployRun(again.returncode, 0, json.loads(again.stdout)["results"], again.stderr)
        assert rerun.rc == 0 and rerun.changed_ops() == [], rerun.changed_ops()
    finally:
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0  # back to the checkout's own deploy

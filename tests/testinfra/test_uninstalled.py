"""What uninstall.py must leave on every host: nothing of the deploy's, the models and the account
unless it was asked to remove them.

    pytest tests/testinfra --inventory inventory/prod.py --uninstalled
"""
from ollama_deploy.tasks.install import OLLAMA_HOME
from ollama_deploy.tasks.uninstall import installed_files


def test_ollama_is_stopped_and_no_unit_is_left(target):
    h = target.host
    for unit in ("ollama.service", "ollama-firewall.service"):
        assert h.run(f"systemctl cat {unit}").rc != 0, unit  # no unit file, no drop-in
    assert h.run("grep -lx ollama /proc/[0-9]*/comm").rc != 0  # no process (a bare host has no pgrep)
    assert "ollama_deploy" not in h.run("nft list tables 2>/dev/null").stdout


def test_nothing_the_deploy_installed_is_left(target):
    h, s = target.host, target.settings
    for path in installed_files(s.ollama_prefix) + [f"{s.ollama_prefix}/lib/ollama", "/var/lib/ollama-deploy/last-good",
                                                     "/var/cache/ollama-deploy"]:
        assert not h.file(path).exists, path


def test_the_models_and_the_account_stay_unless_asked(target):
    h, s = target.host, target.settings
    assert h.file(s.ollama_models_dir).is_directory != s.ollama_uninstall_models
    assert h.user("ollama").exists != s.ollama_uninstall_account
    assert h.file(OLLAMA_HOME).exists != s.ollama_uninstall_account

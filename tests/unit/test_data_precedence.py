"""all.py < profile group file < host data < --data, through pyinfra's real inventory loader."""
from ollama_deploy.lib.inventory_data import load_host_data
from ollama_deploy.lib.settings import resolve


def test_each_layer_overrides_the_one_before(tmp_path):
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data/all.py").write_text('ollama_keep_alive = "5m"\nollama_num_parallel = 1\n'
                                               'ollama_context_length = 2048\nollama_max_queue = 100\n')
    (tmp_path / "group_data/dual_gpu.py").write_text('ollama_keep_alive = "1h"\nollama_num_parallel = 2\n'
                                                    'ollama_context_length = 4096\n')
    (tmp_path / "prod.py").write_text(
        'dual_gpu = [("gpu-a", {"ollama_num_parallel": 3, "ollama_context_length": 8192}), "gpu-b"]\n')
    hosts = dict(load_host_data(tmp_path / "prod.py", cwd=tmp_path, override_data={"ollama_context_length": 16384}))
    a, b = resolve(hosts["gpu-a"]), resolve(hosts["gpu-b"])
    assert a.ollama_max_queue == b.ollama_max_queue == 100          # only all.py sets it
    assert a.ollama_keep_alive == b.ollama_keep_alive == "1h"       # profile over all.py
    assert (a.ollama_num_parallel, b.ollama_num_parallel) == (3, 2)  # host data over profile
    assert a.ollama_context_length == b.ollama_context_length == 16384  # --data over everything

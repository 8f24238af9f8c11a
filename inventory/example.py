"""Example production inventory: copy to inventory/prod.py and edit.

Each host belongs to exactly one profile group (ollama_deploy/lib/profiles.py declares its values).
Per-host data overrides the group's; `--data key=value` on the command line overrides both.
SSH user, port and key are best kept in ~/.ssh/config, so pyinfra and testinfra agree.
"""

cpu_xeon = [
    ("grey-area.example.net", {"ollama_models": ["qwen2.5-coder:7b", "deepseek-r1:7b"]}),
]
dual_gpu = [
    ("gpu-box.example.net", {"ollama_models": ["hermes3:8b-llama3.1-q5_K_M"]}),
]
dgx_spark = [
    ("spark.example.net", {"ollama_models": ["llama3.2:3b"], "ollama_keep_alive": "45m"}),
]

"""Defaults for every host. Each name here is a setting declared in tasks/settings.py
(type, default, description); profile files and inventory host data override them."""

ollama_version = "0.32.15"
ollama_release_base_url = "https://github.com/ollama/ollama/releases/download"
ollama_models = []

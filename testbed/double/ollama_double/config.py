"""Where the test double lives and what its release config.json says."""

from __future__ import annotations

import json
from pathlib import Path

from ollama_deploy.gocompat import OLLAMA_VERSION

# .../lib/ollama/test-double/ollama_double/config.py
PACKAGE_DIR = Path(__file__).resolve().parent
TEST_DOUBLE_DIR = PACKAGE_DIR.parent
# Real Ollama finds lib/ollama at <exe>/../lib/ollama; the double is installed
# inside it, so the GPU library subdirectories are siblings of test-double/.
LIB_OLLAMA = TEST_DOUBLE_DIR.parent

DEFAULTS = {
    "version": OLLAMA_VERSION,
    "arch": "amd64",
    "registry": "http://10.201.0.1:8701",
    "tokens_per_s": {"gpu": 80, "cpu": 12},
    "load_seconds": 0.3,
}


def load_config() -> dict:
    """Read config.json next to the package; missing keys take DEFAULTS."""
    cfg = json.loads(json.dumps(DEFAULTS))
    path = TEST_DOUBLE_DIR / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


CONFIG = load_config()
VERSION = str(CONFIG["version"])

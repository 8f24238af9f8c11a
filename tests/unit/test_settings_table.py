"""The README's settings table is generated from the one declaration and kept current."""
from pathlib import Path

from ollama_deploy.control.settings_table import TABLE_END, TABLE_START, settings_table
from ollama_deploy.lib.settings import OllamaSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_current():
    text = README.read_text()
    current = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    assert current == settings_table(), "run: .venv/bin/python -m ollama_deploy.control.settings_table"


def test_table_has_one_row_per_declared_setting():
    rows = settings_table().splitlines()[2:]
    assert [r.split("`")[1] for r in rows] == list(OllamaSettings.model_fields)

"""The README's settings table is generated from the one declaration and kept current."""
from pathlib import Path

import pytest

from ollama_deploy.control.settings_table import TABLES, settings_table
from ollama_deploy.lib.settings import OllamaSettings

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("start, end, table", TABLES, ids=[t[2].__name__ for t in TABLES])
def test_readme_tables_are_current(start, end, table):
    text = README.read_text()
    current = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert current == table(), "run: .venv/bin/python -m ollama_deploy.control.settings_table"


def test_table_has_one_row_per_declared_setting():
    rows = settings_table().splitlines()[2:]
    assert [r.split("`")[1] for r in rows] == list(OllamaSettings.model_fields)

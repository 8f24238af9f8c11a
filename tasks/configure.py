"""Write the drop-ins in ollama.service.d/ from the host's settings; remove those it no longer needs.

Example (deploy.py):
    changed = configure_ollama()    # OperationMetas whose change means "restart needed"
"""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import jinja2
from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.operations import files

from .plan import plan_for
from .settings import DROPIN_DIR, DROPIN_FILES, DropinLine, dropins

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "dropin.conf.j2"
_JINJA = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                            undefined=jinja2.StrictUndefined)


def render_dropin(file_name: str, lines: list[DropinLine]) -> str:
    """The exact text of a drop-in (the testinfra suite compares hosts' files with this)."""
    return _JINJA.from_string(TEMPLATE.read_text()).render(file_name=file_name, lines=lines)


@operation()
def dropin(path: str, content: str | None):
    """
    Make the drop-in at `path` hold exactly `content`, or remove it when `content` is None.

    One operation for both cases, so every host runs the same operations in the same order
    (pyinfra orders operations across hosts; per-host branches between two operations cycle).

    **Example:**

    .. code:: python

        dropin(name="Drop-in performance.conf", path="/etc/systemd/system/ollama.service.d/performance.conf",
               content="[Service]\\nEnvironment=\\"OLLAMA_KEEP_ALIVE=1h\\"\\n")
    """
    if content is None:
        yield from files.file._inner(path=path, present=False)
    else:
        yield from files.put._inner(src=StringIO(content), dest=path, user="root", group="root", mode="644")


@deploy("Configure Ollama")
def configure_ollama():
    settings = plan_for(host).settings
    wanted = dropins(settings)
    files.directory(name="Models directory", path=settings.ollama_models_dir, user="ollama", group="ollama",
                    mode="755")
    files.directory(name="Drop-in directory", path=DROPIN_DIR, user="root", group="root", mode="755")
    return [dropin(name=f"Drop-in {file_name}", path=f"{DROPIN_DIR}/{file_name}",
                   content=render_dropin(file_name, wanted[file_name]) if file_name in wanted else None)
            for file_name in DROPIN_FILES]

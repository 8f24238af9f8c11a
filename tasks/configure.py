"""Write the drop-ins in ollama.service.d/ from the host's settings; remove those it no longer needs.

Example (deploy.py):
    changed = configure_ollama()    # OperationMetas whose change means "restart needed"
"""
from __future__ import annotations

from pathlib import Path

import jinja2
from pyinfra import host
from pyinfra.api import deploy

from ollama_deploy.lib.dropins import DROPIN_DIR, DROPIN_FILES, DropinLine, dropins
from ollama_deploy.lib.operations import files_content
from ollama_deploy.lib.plan import plan_for

RESUME_HOOK = "/usr/lib/systemd/system-sleep/ollama-nvidia-uvm"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_JINJA = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                            keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def render(template: str, **values) -> str:
    """A template under templates/, rendered locally (so tests can compare hosts' files with it)."""
    return _JINJA.get_template(template).render(**values)


def render_dropin(file_name: str, lines: list[DropinLine]) -> str:
    """The exact text of a drop-in (the testinfra suite compares hosts' files with this)."""
    return render("dropin.conf.j2", file_name=file_name, lines=lines)


@deploy("Configure Ollama")
def configure_ollama():
    settings = plan_for(host).settings
    wanted = dropins(settings)
    # Not a restart trigger: the hook only runs at resume.
    files_content(name="Resume hook (nvidia_uvm)", mode="755", files={
        RESUME_HOOK: render("ollama-resume.sh.j2") if settings.ollama_resume_fix else None})
    return [files_content(name="Drop-ins", files={
        f"{DROPIN_DIR}/{file_name}": render_dropin(file_name, wanted[file_name]) if file_name in wanted else None
        for file_name in DROPIN_FILES})]

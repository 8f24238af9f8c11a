"""The README's settings tables, generated from the declarations in ollama_deploy/lib/settings.py
(Ollama hosts) and ollama_deploy/lib/site_registry_settings.py (site registry hosts).

    .venv/bin/python -m ollama_deploy.control.settings_table     # rewrite the table in README.md (a test fails when stale)
"""
from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from ollama_deploy.lib.checks import declared
from ollama_deploy.lib.ollama_env import side
from ollama_deploy.lib.settings import OllamaSettings
from ollama_deploy.lib.site_registry_settings import SiteRegistrySettings

TABLE_START, TABLE_END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
SITE_START, SITE_END = "<!-- site-registry-table:start -->", "<!-- site-registry-table:end -->"


def type_name(annotation: Any) -> str:
    """A setting's type as the README shows it: `int | None`, without the rule a checks type attaches."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def settings_table() -> str:
    """One row per declared setting (CI checks the README holds the current table)."""
    rows = ["| setting | type | default | unit | written to | read by Ollama | description |",
            "|---|---|---|---|---|---|---|"]
    for key, field in OllamaSettings.model_fields.items():
        meta = declared(field)
        kind = type_name(field.annotation)
        target = meta["env"] or meta["directive"]
        written = f"`{meta['dropin']}`: `{target}`" if meta["dropin"] else "—"
        env = meta["env"] or ""
        reads = ("— (systemd)" if meta["directive"] else "—" if not env else "yes" if side(env) == "server"
                 else "no (CUDA runtime)" if env.startswith("CUDA_") else "no")
        rows.append(f"| `{key}` | `{kind}` | `{field.default!r}` | {meta['unit'] or '—'} | {written} | {reads} "
                    f"| {(field.description or '').replace('|', '/')} |")
    return "\n".join(rows)


def site_registry_table() -> str:
    """One row per setting of a site registry host."""
    rows = ["| setting | type | default | description |", "|---|---|---|---|"]
    for key, field in SiteRegistrySettings.model_fields.items():
        rows.append(f"| `{key}` | `{type_name(field.annotation)}` | `{field.default!r}` "
                    f"| {(field.description or '').replace('|', '/')} |")
    return "\n".join(rows)


TABLES = ((TABLE_START, TABLE_END, settings_table), (SITE_START, SITE_END, site_registry_table))


def update_readme(path: str = "README.md") -> bool:
    """Rewrite the tables between their markers in README.md; True when one changed."""
    with open(path) as f:
        text = f.read()
    new = text
    for start, end, table in TABLES:
        head, rest = new.split(start, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{start}\n{table()}\n{end}{tail}"
    if new != text:
        with open(path, "w") as f:
            f.write(new)
    return new != text


if __name__ == "__main__":
    print("README.md settings tables " + ("updated" if update_readme() else "already current"))
